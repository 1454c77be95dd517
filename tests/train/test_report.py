"""What a run reports: the selection metric at every evaluated step in the trackers (TensorBoard event files),
one line per stage event off a terminal, and the end-of-run summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardkit.train.summary import summary_lines


def _grpo(model: Path, tmp_path: Path, trainer: dict) -> dict:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+{i}=", "answer": str(2 * i)}) + "\n" for i in range(8)))
    return {
        "stage": "grpo",
        "model": str(model),
        "output_dir": str(tmp_path / "grpo"),
        "dataset": {"path": str(data), "eval_size": 2},
        "peft": {"r": 4, "dropout": 0.0},
        "rewards": {
            "rewards": {
                "correct": {"use": "exact_match", "reference": "answer"},
                "short": {"use": "brevity", "max_length": 4},
            }
        },
        "callbacks": [
            {"name": "checkpoint_inference", "dataset": "@eval", "reference_columns": ["answer"], "max_new_tokens": 4},
            {"name": "best_checkpoint", "spec": "@rewards"},
        ],
        "trainer": {
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
            "per_device_eval_batch_size": 4,
            "activation_checkpointing": False,
            "seed": 0,
            **trainer,
        },
    }


@pytest.mark.slow
def test_selection_metric_and_components_reach_tensorboard_at_every_evaluation(tiny_lm_dir, tmp_path):
    pytest.importorskip("tensorboard")  # in the `test` extra
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rewardkit.train import run

    said: list[str] = []
    [result] = run(_grpo(tiny_lm_dir, tmp_path, {"report_to": ["tensorboard"]}), say=said.append)
    [logdir] = {p.parent for p in (tmp_path / "grpo").rglob("events.out.tfevents*")}  # <output_dir>/runs/<run>/
    events = EventAccumulator(str(logdir))
    events.Reload()
    tags = events.Tags()["scalars"]
    for tag in ("eval/score", "eval/score/correct", "eval/score/short"):
        assert tag in tags, tags
        assert [e.step for e in events.Scalars(tag)] == [2, 4]
    scores = json.loads((tmp_path / "grpo" / "inference" / "scores.json").read_text())
    assert [e.value for e in events.Scalars("eval/score")] == pytest.approx([c["score"] for c in scores["checkpoints"]])
    # Piped output (pytest captures stderr): no progress bars, one line per stage event instead.
    assert said[0] == f"stage grpo: training 4 steps -> {tmp_path / 'grpo'}"
    assert [s.split(" evaluated")[0] for s in said if "evaluated" in s] == [
        "stage grpo: step 2/4",
        "stage grpo: step 4/4",
    ]
    assert said[-1] == "stage grpo: finished at step 4"
    # The end-of-run block names the Trainer's best, which is best_checkpoint's best, and what to run next.
    assert result.metric == "eval_score" and result.best_step == scores["best"]["step"]
    assert result.best_score == pytest.approx(scores["best"]["score"])
    assert result.last_step == 4 and result.last_score == pytest.approx(scores["checkpoints"][-1]["score"])
    # The training reward TRL logged at those steps stands beside the held-out score (reward-hacking check).
    train = {c["step"]: c["train_reward"] for c in scores["checkpoints"]}
    assert result.best_train_reward == pytest.approx(train[result.best_step])
    assert result.last_train_reward == pytest.approx(train[4]) and result.alarm is None
    lines = summary_lines(result, "c.yaml")
    best = scores["best"]
    ci = f" (95% CI [{best['ci_low']:.4f}, {best['ci_high']:.4f}])"  # the interval `select` prints
    assert lines[1] == f"  best: step {result.best_step}, eval_score = {result.best_score:.4f}{ci}"
    assert result.tie == scores["tie"] and ((f"  tie: {scores['tie']}" in lines) == bool(scores["tie"]))
    assert (
        f"  training reward: {result.best_train_reward:.4f} at the best step, "
        f"{result.last_train_reward:.4f} at the last (TRL's logged `reward`)" in lines
    )
    assert f"  best model: {tmp_path / 'grpo' / 'best'}" in lines
    assert lines[-1].startswith(f"  next: rewardkit generate --from-run {tmp_path / 'grpo'} ")


def test_the_summary_puts_the_alarm_beside_the_scores():
    from rewardkit.train.pipeline import StageResult

    result = StageResult(
        "grpo",
        "grpo",
        "/runs/g",
        "/runs/g/merged",
        6,
        None,
        1.0,
        metric="eval_score",
        best_step=2,
        best_score=1.0,
        last_step=6,
        last_score=0.0,
        best_train_reward=0.54,
        last_train_reward=0.98,
        alarm="training reward 0.54 -> 0.98 while eval_score 1 -> 0 over steps [2, 4, 6]",
    )
    lines = summary_lines(result, "c.yaml")
    assert "  training reward: 0.5400 at the best step, 0.9800 at the last (TRL's logged `reward`)" in lines
    assert "  reward-hacking alarm: training reward 0.54 -> 0.98 while eval_score 1 -> 0 over steps [2, 4, 6]" in lines


def test_an_alarm_at_an_evaluation_goes_into_the_metrics_the_trackers_get():
    import rewardkit

    cb = rewardkit.get_callback("best_checkpoint", spec={"rewards": {"em": {"use": "exact_match"}}}, divergence_warn=2)

    class State:
        global_step, epoch = 4, 1.0
        log_history = [{"eval_loss": 0.1, "step": 4}]  # what the Trainer logged before on_evaluate

    metrics: dict = {"eval_loss": 0.1}
    cb._insert(State, metrics, {"score": 0.0, "components": {"em": 0.0}, "alarm": {"message": "m"}})
    assert metrics["eval_score/reward_divergence"] == 1.0 and metrics["eval_score"] == 0.0
    assert State.log_history == [
        {"eval_loss": 0.1, "step": 4, "eval_score": 0.0, "eval_score/em": 0.0, "eval_score/reward_divergence": 1.0}
    ]
