"""Issue 29: each checkpoint's eval rows are generated once (checkpoint_inference supplies the metric that picks the
best checkpoint, TRL's GRPO evaluation is off), the preflight warns with an estimate when a config generates them
twice or one prompt per call, and a piped run says what it is doing: one short line per training log, the start
and end of every evaluation and checkpoint inference, the full records in log_history.jsonl and trainer_state.json.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rewardkit.core.errors import ConfigError
from rewardkit.train import eval_plan
from rewardkit.train.config import load_stages
from tests.conftest import run_cli_here

pytestmark = pytest.mark.slow


def _grpo(model: Path, tmp_path: Path, **top) -> dict:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+{i}=", "answer": str(2 * i)}) + "\n" for i in range(10)))
    trainer = {
        "max_steps": 4,
        "per_device_train_batch_size": 4,
        "num_generations": 4,
        "max_completion_length": 4,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": 2,
        "eval_strategy": "steps",
        "eval_steps": 2,
        "metric_for_best_model": "score",
        "activation_checkpointing": False,
        "seed": 0,
        **top.pop("trainer", {}),
    }
    return {
        "stage": "grpo",
        "model": str(model),
        "output_dir": str(tmp_path / "grpo"),
        "dataset": {"path": str(data), "eval_size": 3},
        "peft": {"r": 4, "dropout": 0.0},
        "rewards": {"rewards": {"correct": {"use": "exact_match", "reference": "answer"}}},
        "callbacks": [
            {"name": "checkpoint_inference", "dataset": "@eval", "reference_columns": ["answer"], "max_new_tokens": 4},
            {"name": "best_checkpoint", "spec": "@rewards"},
        ],
        "trainer": trainer,
        **top,
    }


def _stage(cfg: dict):
    [stage], _, _ = load_stages(cfg)
    return stage


# --- the plan and the preflight's warnings (no training) --------------------------------------------------------
def test_checkpoint_inference_on_the_eval_split_turns_trls_evaluation_off(tmp_path):
    cfg = _grpo(tmp_path, tmp_path)
    assert eval_plan.plan(_stage(cfg)).trl_generates is False
    assert eval_plan.warnings(_stage(cfg), eval_rows=127, train_rows=622) == []
    # A metric only TRL's evaluation computes keeps it on; so does trl_eval: true, or no checkpoint_inference.
    assert eval_plan.plan(
        _stage({**cfg, "trainer": {**cfg["trainer"], "metric_for_best_model": "reward"}})
    ).trl_generates
    assert eval_plan.plan(_stage({**cfg, "trl_eval": True})).trl_generates
    assert eval_plan.plan(_stage({**cfg, "callbacks": []})).trl_generates
    with pytest.raises(ConfigError, match=r"metric_for_best_model='eval_reward' comes from GRPO's own evaluation"):
        eval_plan.check_plan(
            _stage({**cfg, "trl_eval": False, "trainer": {**cfg["trainer"], "metric_for_best_model": "reward"}}), "c"
        )
    with pytest.raises(ConfigError, match="trl_eval.*only used by stage grpo"):
        load_stages({**cfg, "stage": "sft", "rewards": None, "trl_eval": True})


def test_the_preflight_warns_with_an_estimate_when_rows_are_generated_twice(tmp_path):
    """The issue's competition numbers: 127 dev rows, batch 2 with 2 generations: one prompt per generate call."""
    cfg = _grpo(tmp_path, tmp_path, trl_eval=True)
    cfg["trainer"].update(per_device_eval_batch_size=2, num_generations_eval=2, max_steps=-1, num_train_epochs=3)
    cfg["trainer"].update(eval_steps=5)
    [twice] = eval_plan.warnings(_stage(cfg), eval_rows=127, train_rows=622)
    assert "each evaluation generates the 127 eval rows twice (trl_eval: true)" in twice
    assert "127 prompts x 2 completions in 127 generate calls of 2 completions (1 prompt(s) per call" in twice
    assert "checkpoint_inference generates them again in 8 calls of 16: 135 generate calls per evaluation" in twice
    assert "where 8 would do (about 374 evaluations in this run)" in twice  # 3 x 622 steps / 5
    cfg["callbacks"] = []  # TRL's evaluation alone, one prompt per call
    [single] = eval_plan.warnings(_stage(cfg), eval_rows=127, train_rows=622)
    assert "one prompt per generate call, 127 calls per evaluation" in single
    assert "raise per_device_eval_batch_size to a multiple of 2" in single
    cfg["trainer"]["per_device_eval_batch_size"] = 16  # 8 prompts per call: fine
    assert eval_plan.warnings(_stage(cfg), eval_rows=127, train_rows=622) == []


# --- real runs ---------------------------------------------------------------------------------------------------
def test_a_piped_cli_run_generates_each_checkpoint_once_and_says_so(tiny_lm_dir, tmp_path):
    cfg = tmp_path / "grpo.json"
    cfg.write_text(json.dumps(_grpo(tiny_lm_dir, tmp_path)))
    proc = run_cli_here("train", cfg)  # in-process: stdout is a StringIO, not a terminal, as a pipe is
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    # TRL's raw dict per log is gone: one short line per logging step instead.
    assert not any("{'loss'" in line or "'eval_" in line for line in out), out
    logs = [line for line in out if re.match(r"stage grpo: step \d/4 loss=", line)]
    assert len(logs) == 4 and all(len(line) < 100 for line in logs), logs
    assert all(
        re.fullmatch(r"stage grpo: step \d/4 loss=\S+ reward=\S+±\S+( kl=\S+)?( clip=\S+)? \d+\.\d\d s/step", x)
        for x in logs
    )
    # Every evaluation: start, checkpoint_inference start and end (rows, seconds), end (seconds, the metric).
    for step in (2, 4):
        at = f"stage grpo: step {step}/4"
        i = out.index(f"{at} evaluation started: 3 eval rows, callbacks only (TRL's generation-based evaluation off)")
        assert out[i + 1] == f"{at} checkpoint_inference started: 3 rows"
        assert re.fullmatch(
            rf"{at} checkpoint_inference done: 3/3 rows in \d+\.\d s -> .*step_{step}\.json", out[i + 2]
        )
        assert re.fullmatch(rf"{at} evaluated in \d+\.\d s: eval_score=\S+", out[i + 3])
    run = tmp_path / "grpo"
    state = json.loads((run / "trainer_state.json").read_text())
    history = state["log_history"]
    # The metric that picked the best checkpoint is checkpoint_inference's; TRL's evaluation never ran.
    assert not any(k.startswith(("eval_reward", "eval_loss", "eval_completions")) for e in history for k in e)
    assert [e["step"] for e in history if "eval_score" in e] == [2, 4]
    scores = json.loads((run / "inference" / "scores.json").read_text())
    assert state["best_metric"] == max(c["score"] for c in scores["checkpoints"])
    # log_history.jsonl holds the same records as trainer_state.json, in full.
    records = [json.loads(line) for line in (run / "log_history.jsonl").read_text().splitlines()]
    assert [(r["step"], sorted(set(r) - {"time", "epoch", "step"})) for r in records] == [
        (e["step"], sorted(set(e) - {"epoch", "step"})) for e in history
    ]
    assert "completions/mean_length" in records[0] and "reward_std" in records[0]


def test_trl_eval_true_generates_twice_and_the_preflight_says_so(tiny_lm_dir, tmp_path, monkeypatch):
    from rewardkit.train import events, run

    monkeypatch.setattr(events, "PROGRESS_EVERY", 0.0)  # a progress line at every batch (every 30 s in a real run)
    said: list[str] = []
    cfg = _grpo(tiny_lm_dir, tmp_path, trl_eval=True)
    cfg["trainer"].update(max_steps=2, per_device_eval_batch_size=4)
    run(cfg, say=said.append)
    warning = next(line for line in said if line.startswith("warning:"))
    assert "each evaluation generates the 3 eval rows twice (trl_eval: true)" in warning
    assert said.index(warning) < said.index(f"stage grpo: training 2 steps -> {tmp_path / 'grpo'}")
    assert "stage grpo: step 2/2 evaluation started: 3 eval rows, TRL evaluation" in said
    assert any(re.fullmatch(r"stage grpo: step 2/2 evaluating: \d+ batches, \d+ s", line) for line in said), said
    assert any(re.fullmatch(r"stage grpo: step 2/2 checkpoint_inference: 3/3 rows, \d+ s", line) for line in said)
    history = json.loads((tmp_path / "grpo" / "trainer_state.json").read_text())["log_history"]
    assert any("eval_reward" in e for e in history) and any("eval_score" in e for e in history)


def test_a_refused_train_writes_nothing(tiny_lm_dir, tmp_path):
    """Refused after its checks (a callback that cannot be built): no eval_rows.jsonl, no run folder at all."""
    from rewardkit.train import run

    cfg = _grpo(tiny_lm_dir, tmp_path)
    cfg["callbacks"][1]["top_k"] = 0  # best_checkpoint refuses it when the callbacks are built
    with pytest.raises(ConfigError, match="top_k"):
        run(cfg)
    assert not (tmp_path / "grpo").exists()


def test_log_line_is_short_and_keeps_what_matters():
    from rewardkit.train.events import log_line

    logs = {"loss": 0.01234, "grad_norm": 1.5, "reward": 0.4123, "reward_std": 0.1031, "kl": 0.00123}
    logs.update({"clip_ratio/region_mean": 0.0, "step_time": 1.381, **{f"rewards/r{i}/mean": 0.1 for i in range(30)}})
    assert log_line(logs, None) == "loss=0.01234 reward=0.4123±0.1031 kl=0.00123 clip=0 1.38 s/step"
    assert log_line({"loss": 2.5, "reward": None}, 0.5) == "loss=2.5 reward=- 0.50 s/step"  # SFT/DPO: measured time


def test_log_history_jsonl_is_trimmed_to_the_resumed_step(tmp_path):
    """On a resume from checkpoint-N the records after N (the abandoned continuation) and a line cut by a kill go."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from rewardkit.train.log_records import LOG_FILE, LogRecords, read_log

    path = tmp_path / LOG_FILE
    path.write_text("".join(json.dumps({"step": s, "loss": s / 10}) + "\n" for s in range(1, 7)) + '{"step": 7, "lo')
    records = LogRecords(tmp_path)
    args, control = TrainingArguments(str(tmp_path / "out"), report_to="none", use_cpu=True), TrainerControl()
    records.on_train_begin(args, TrainerState(global_step=4), control)
    assert [r["step"] for r in read_log(path)] == [1, 2, 3, 4]
    records.on_log(args, TrainerState(global_step=5, epoch=1.0), control, logs={"loss": float("nan"), "x": 1})
    assert read_log(path)[-1] == {"step": 5, "epoch": 1.0, "time": read_log(path)[-1]["time"], "loss": None, "x": 1}
    records.on_train_begin(args, TrainerState(global_step=0), control)  # a fresh start: nothing of before
    assert path.read_text() == ""


def test_evaluation_settings_may_change_on_resume():
    """trl_eval and GRPO's eval batch change what an evaluation generates, not what a training step computes."""
    from rewardkit.train.config_change import split_changes

    assert split_changes(["trl_eval", "trainer.num_generations_eval", "trainer.per_device_eval_batch_size"]) == (
        [],
        ["trl_eval", "trainer.num_generations_eval", "trainer.per_device_eval_batch_size"],
    )
