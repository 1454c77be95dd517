"""`rewardkit train --resume`: a run SIGKILLed after or during a save continues to the uninterrupted result;
a folder that holds a run is refused without --resume/--overwrite; a running train's folder is locked."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rewardkit.core.errors import ConfigError
from rewardkit.core.fileio import atomic_write_json
from tests.conftest import TESTS, holding_lock, run_cli_here, stale_lock

KILL = TESTS / "scripts" / "train_kill.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300"}


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    """`rewardkit train ARGS` in this process: only a run that must die by SIGKILL needs a process of its own (a
    subprocess would spend most of its time importing torch and TRL). The paths in these configs are absolute."""
    with contextlib.chdir(cwd):
        return run_cli_here("train", *args)


def _killed(mode: str, step: int, suffix: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(KILL), mode, str(step), suffix, "--", "train", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=ENV,
    )


def _grpo(model: Path, data: Path, out: Path) -> dict:
    return {
        "stage": "grpo",
        "model": str(model),
        "output_dir": str(out),
        "dataset": {"path": str(data), "eval_size": 2},
        "peft": {"r": 4, "alpha": 8, "dropout": 0.0},
        "rewards": {
            "rewards": {
                "correct": {"use": "exact_match", "reference": "answer"},
                "short": {"use": "brevity", "max_length": 4},
            },
            "combine": "correct + short",
        },
        "callbacks": [
            {"name": "lora_save"},
            {"name": "checkpoint_inference", "dataset": "@eval", "reference_columns": ["answer"], "max_new_tokens": 4},
            {"name": "best_checkpoint", "spec": "@rewards", "top_k": 2},
        ],
        "trainer": {
            "max_steps": 6,
            "per_device_train_batch_size": 4,
            "num_generations": 4,
            "max_completion_length": 4,
            "learning_rate": 0.05,
            "logging_steps": 1,
            "save_strategy": "steps",
            "save_steps": 2,
            "eval_strategy": "steps",
            "eval_steps": 2,
            "metric_for_best_model": "score",
            "per_device_eval_batch_size": 4,
            "activation_checkpointing": False,
            "disable_tqdm": True,
            "seed": 0,
            "dataloader_num_workers": 0,
        },
    }


@pytest.fixture(scope="module")
def grpo_setup(tiny_lm_dir, tmp_path_factory):
    """The config maker and an uninterrupted run to compare with."""
    root = tmp_path_factory.mktemp("resume")
    data = root / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+{i}=", "answer": str(2 * i)}) + "\n" for i in range(10)))

    def config(name: str) -> Path:
        path = root / f"{name}.json"
        path.write_text(json.dumps(_grpo(tiny_lm_dir, data, root / name)))
        return path

    proc = _cli(config("straight"), cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, config, proc


def _adapter(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def _check_same_as_straight(root: Path, name: str, tiny_lm_dir: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    straight, resumed = _adapter(root / "straight" / "final"), _adapter(root / name / "final")
    assert straight.keys() == resumed.keys()
    diff = max(float((straight[k] - resumed[k]).abs().max()) for k in straight)
    assert diff <= 1e-6, diff
    assert any(float(t.abs().max()) > 0 for k, t in resumed.items() if "lora_B" in k)  # it did train
    out = root / name
    # Every evaluated step has exactly one inference file; nothing of the abandoned steps is left in the sidecar.
    assert sorted(p.name for p in (out / "inference").glob("step_*.json")) == [
        "step_2.json",
        "step_4.json",
        "step_6.json",
    ]
    scores = json.loads((out / "inference" / "scores.json").read_text())
    first = json.loads((root / "straight" / "inference" / "scores.json").read_text())
    assert [c["step"] for c in scores["checkpoints"]] == [2, 4, 6]
    assert scores["checkpoints"] == first["checkpoints"]
    record = json.loads((out / "rewardkit_stage.json").read_text())
    assert record["steps"] == 6 and record["best_step"] == scores["best"]["step"]  # the Trainer's best = ours
    assert scores["best_dir"]["step"] == record["best_step"]
    assert sorted(p.name for p in (out / "adapters").iterdir()) == sorted(
        p.name for p in (root / "straight" / "adapters").iterdir()
    )  # top_k pruning continued
    base = AutoModelForCausalLM.from_pretrained(str(tiny_lm_dir))
    PeftModel.from_pretrained(base, str(out / "best"))  # best/ loads with peft
    assert torch.equal(
        _adapter(out / "best")["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"],
        _adapter(out / "adapters" / f"step_{record['best_step']}")[
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
        ],
    )


@pytest.mark.slow
def test_killed_after_a_save_resumes_to_the_uninterrupted_adapter(grpo_setup, tiny_lm_dir):
    root, config, straight = grpo_setup
    assert "  best: step " in straight.stdout and "next: rewardkit generate --from-run" in straight.stdout
    cfg = config("after")
    assert _killed("after-save", 4, "after", cfg, cwd=root).returncode == -signal.SIGKILL
    # A change to what is trained is refused in one line naming the key (nothing moved; the run continues below).
    proc = _cli(cfg, "--resume", "--set", "trainer.learning_rate=0.1", cwd=root)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-3000:]
    assert "changed what is trained since the interrupted run" in proc.stderr and "trainer.learning_rate" in proc.stderr
    assert "--accept-config-change" in proc.stderr
    # A hand-edited score in the record is not reused (it would be picked as the best): it is rescored.
    scores = root / "after" / "inference" / "scores.json"
    record = json.loads(scores.read_text())
    record["checkpoints"][0].update(score=99.0, corpus=99.0, item=99.0)
    scores.write_text(json.dumps(record))
    proc = _cli(cfg, "--resume", cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resume: stage 'grpo' continues from {root / 'after' / 'checkpoint-4'}." in proc.stdout
    _check_same_as_straight(root, "after", tiny_lm_dir)


@pytest.mark.slow
def test_killed_after_the_last_save_finishes_without_training_past_max_steps(grpo_setup, tiny_lm_dir):
    root, config, _ = grpo_setup
    cfg = config("last")
    assert _killed("after-save", 6, "last", cfg, cwd=root).returncode == -signal.SIGKILL
    assert not (root / "last" / "rewardkit_stage.json").exists()  # killed before the merge and the record
    # A damaged RNG state in the latest checkpoint: one line naming the file and the previous checkpoint.
    rng = root / "last" / "checkpoint-6" / "rng_state.pth"
    good = rng.read_bytes()
    rng.write_bytes(good[: len(good) // 2])
    proc = _cli(cfg, "--resume", cwd=root)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-3000:]
    assert f"{rng} cannot be read" in proc.stderr and f"--resume {root / 'last' / 'checkpoint-4'}" in proc.stderr
    assert "weights_only" not in proc.stderr + proc.stdout
    rng.write_bytes(good)
    proc = _cli(cfg, "--resume", cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{root / 'last' / 'checkpoint-6'} is the last step; finishing without training." in proc.stdout
    assert sorted(p.name for p in (root / "last").glob("checkpoint-*")) == [f"checkpoint-{n}" for n in (2, 4, 6)]
    _check_same_as_straight(root, "last", tiny_lm_dir)


@pytest.mark.slow
def test_a_copied_run_folder_names_its_own_best_model(grpo_setup):
    root, config, _ = grpo_setup
    shutil.copytree(root / "straight", root / "copied", symlinks=True)
    proc = _cli(config("copied"), "--resume", cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"best model: {root / 'copied' / 'best'}" in proc.stdout
    assert str(root / "straight") not in proc.stdout


@pytest.mark.slow
def test_rescored_steps_on_resume_are_the_summarys_and_the_trainers_numbers(grpo_setup):
    """A resume whose accepted spec change rescores step 2: the summary, rewardkit_stage.json and the Trainer's
    best use the new score (was: TRL's logged score of the old spec beside a scores.json saying otherwise)."""
    root, config, _ = grpo_setup
    run = root / "rescored"
    shutil.copytree(root / "straight", run, symlinks=True)
    for name in ("checkpoint-4", "checkpoint-6", "final", "merged", "adapters/step_4", "adapters/step_6"):
        shutil.rmtree(run / name, ignore_errors=True)  # top_k 2 pruned some adapters
    for name in ("rewardkit_stage.json", "inference/step_4.json", "inference/step_6.json"):
        (run / name).unlink()
    change = ("--set", "rewards.combine=correct + short + 1", "--accept-config-change")  # every score moves
    proc = _cli(config("rescored"), "--resume", *change, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = {c["step"]: c["score"] for c in json.loads((run / "inference" / "scores.json").read_text())["checkpoints"]}
    stage = json.loads((run / "rewardkit_stage.json").read_text())
    best = max(scores, key=lambda step: (scores[step], -step))
    assert (stage["best_step"], stage["best_score"]) == (best, scores[best])
    assert f"best: step {best}, eval_score = {scores[best]:.4f}" in proc.stdout
    state = json.loads((run / "checkpoint-6" / "trainer_state.json").read_text())
    assert {e["step"]: e["eval_score"] for e in state["log_history"] if "eval_score" in e} == scores
    assert (state["best_global_step"], state["best_metric"]) == (best, scores[best])


@pytest.mark.slow
def test_killed_during_a_save_skips_the_half_written_checkpoint(grpo_setup, tiny_lm_dir):
    root, config, _ = grpo_setup
    cfg = config("during")
    assert _killed("in-save", 4, "during", cfg, cwd=root).returncode == -signal.SIGKILL
    assert (root / "during" / "inference" / "step_4.json").is_file()  # evaluated before the save died
    proc = _cli(cfg, "--resume", cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert any(line.startswith(f"resume: skipping {root / 'during' / 'checkpoint-4'}: incomplete") for line in lines)
    assert f"resume: stage 'grpo' continues from {root / 'during' / 'checkpoint-2'}." in lines
    _check_same_as_straight(root, "during", tiny_lm_dir)


@pytest.mark.slow
def test_a_folder_holding_a_run_is_refused_without_resume_or_overwrite(grpo_setup):
    root, config, _ = grpo_setup
    before = sorted(str(p) for p in (root / "straight").rglob("*"))
    proc = _cli(root / "straight.json", cwd=root)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "already holds a run (a finished stage)" in proc.stderr
    assert "--resume" in proc.stderr and "--overwrite" in proc.stderr
    assert sorted(str(p) for p in (root / "straight").rglob("*")) == before  # nothing moved or deleted
    proc = _cli(root / "straight.json", "--resume", cwd=root)  # everything finished: nothing retrains
    assert proc.returncode == 0 and "resume: stage 'grpo' finished earlier; reusing" in proc.stdout, proc.stderr


@pytest.mark.slow
def test_pipeline_killed_in_stage_two_resumes_without_retraining_stage_one(tiny_lm_dir, tmp_path):
    data = tmp_path / "messages.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"messages": [{"role": "user", "content": f"{i}+{i}?"}, {"role": "assistant", "content": str(2 * i)}]}
            )
            + "\n"
            for i in range(8)
        )
    )
    trainer = {
        "max_steps": 2,
        "per_device_train_batch_size": 2,
        "max_length": 32,
        "save_strategy": "steps",
        "save_steps": 2,
        "activation_checkpointing": False,
        "disable_tqdm": True,
        "seed": 0,
    }
    cfg = tmp_path / "pipe.json"
    cfg.write_text(
        json.dumps(
            {
                "output_dir": str(tmp_path / "pipe"),
                "defaults": {"peft": {"r": 4}, "trainer": trainer},
                "pipeline": [
                    {"stage": "sft", "model": str(tiny_lm_dir), "dataset": {"path": str(data)}},
                    {
                        "stage": "sft",
                        "name": "second",
                        "model": "@sft",
                        "dataset": {"path": str(data)},
                        "trainer": {"max_steps": 4},
                    },
                ],
            }
        )
    )
    assert _killed("after-save", 2, "second", cfg, cwd=tmp_path).returncode == -signal.SIGKILL
    first = (tmp_path / "pipe" / "sft" / "merged" / "model.safetensors").stat().st_mtime_ns
    proc = _cli(cfg, "--resume", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resume: stage 'sft' finished earlier; reusing {tmp_path / 'pipe' / 'sft' / 'merged'}." in proc.stdout
    assert f"resume: stage 'second' continues from {tmp_path / 'pipe' / 'second' / 'checkpoint-2'}." in proc.stdout
    assert (tmp_path / "pipe" / "sft" / "merged" / "model.safetensors").stat().st_mtime_ns == first
    summary = json.loads((tmp_path / "pipe" / "summary.json").read_text())
    assert [(s["name"], s["steps"], s["reused"]) for s in summary] == [("sft", 2, True), ("second", 4, False)]


# --- the lock --------------------------------------------------------------------------------------------------
def _bad_config(tmp_path: Path) -> dict:  # valid up to the trainer keys: fails after the lock is taken
    return {
        "stage": "sft",
        "model": str(tmp_path),
        "output_dir": str(tmp_path / "out"),
        "dataset": {"generator": "arithmetic", "n": 4},
        "trainer": {"learning_rat": 1},
    }


def test_a_running_trains_folder_is_refused_and_a_stale_lock_taken_over(tmp_path):
    from rewardkit.train import run

    (tmp_path / "config.json").write_text("{}")
    with holding_lock(tmp_path / "out") as holder:
        with pytest.raises(ConfigError, match=rf"out is in use by a running `rewardkit train` \(pid {holder.pid}"):
            run(_bad_config(tmp_path))
    # A lock file left by a killed run names a PID that now belongs to another live process (containers reuse
    # PIDs): nobody holds the lock, so it is taken over with one line.
    stale_lock(tmp_path / "out", os.getppid())
    said = []
    with pytest.raises(ConfigError, match="learning_rat"):  # the lock was taken, then the config failed
        run(_bad_config(tmp_path), say=said.append)
    assert said == [
        f"{tmp_path / 'out'}: removed the stale lock of a run that is no longer running (pid {os.getppid()})."
    ]
    assert not (tmp_path / "out" / ".rewardkit-train.lock").exists()  # released on the way out


def test_a_second_smoke_does_not_empty_the_folder_of_a_running_one(tmp_path):
    from rewardkit.train.smoke import MARKER, prepare_output

    root = tmp_path / "smoke" / "pipe"
    (root / "sft").mkdir(parents=True)
    (root / MARKER).write_text("written by `rewardkit train --smoke`; its next run empties this folder\n")
    (root / "sft" / "weights").write_text("in use")
    with holding_lock(root / "sft"):
        with pytest.raises(ConfigError, match="in use by a running `rewardkit train`"):
            prepare_output(root)
    assert (root / "sft" / "weights").read_text() == "in use"


# --- the plan (no training) ------------------------------------------------------------------------------------
def _stage(tmp_path: Path, callbacks: list | None = None, **trainer):
    from rewardkit.train.config import load_stages

    [stage], _, _ = load_stages(
        {
            "stage": "sft",
            "model": "m",
            "output_dir": str(tmp_path / "run"),
            "dataset": {"generator": "arithmetic"},
            "trainer": trainer,
            "callbacks": callbacks or [],
        }
    )
    return stage


def _checkpoint(folder: Path, step: int, complete: bool = True) -> Path:
    """A checkpoint-N as the Trainer saves one, recorded as the run's (what train/save_record.py records)."""
    from rewardkit.core import written

    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "adapter_model.safetensors").write_bytes(b"x")
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    written.note_tree(folder, path)
    return path


def test_plan_takes_the_latest_complete_checkpoint_or_the_configs_own(tmp_path):
    from rewardkit.train.resume import LATEST
    from rewardkit.train.run_plan import plan_stages

    stage = _stage(tmp_path)
    two = _checkpoint(tmp_path / "run", 2)
    _checkpoint(tmp_path / "run", 4, complete=False)
    with pytest.raises(ConfigError, match=r"already holds a run \(checkpoints up to step 4\).*--resume.*--overwrite"):
        plan_stages([stage], "c.yaml", None, False, print)
    with pytest.raises(ConfigError, match="contradict"):
        plan_stages([stage], "c.yaml", LATEST, True, print)
    said: list[str] = []
    plan = plan_stages([stage], "c.yaml", LATEST, False, said.append)
    assert plan["sft"].checkpoint == two and plan["sft"].record is None
    assert said[0].startswith(f"resume: skipping {tmp_path / 'run' / 'checkpoint-4'}: incomplete, no trainer_state")
    assert not (tmp_path / "run" / "checkpoint-4").exists()
    assert [p.name for p in (tmp_path / "run" / "incomplete").iterdir()][0].startswith("checkpoint-4-")
    # trainer.resume_from_checkpoint in the config means the same as --resume PATH (never ignored) ...
    plan = plan_stages([_stage(tmp_path, resume_from_checkpoint=str(two))], "c.yaml", None, False, said.append)
    assert plan["sft"].checkpoint == two
    plan = plan_stages([_stage(tmp_path, resume_from_checkpoint=True)], "c.yaml", None, False, said.append)
    assert plan["sft"].checkpoint == two
    # ... and an incomplete or missing one is refused in one line.
    bad = _checkpoint(tmp_path / "run", 6, complete=False)
    with pytest.raises(ConfigError, match="checkpoint .*checkpoint-6 is incomplete"):
        plan_stages([_stage(tmp_path, resume_from_checkpoint=str(bad))], "c.yaml", None, False, print)
    with pytest.raises(ConfigError, match="to resume from does not exist"):
        plan_stages([stage], "c.yaml", str(tmp_path / "nope"), False, print)


def test_overwrite_deletes_the_earlier_run_and_says_so(tmp_path):
    from rewardkit.train.run_plan import plan_stages

    _checkpoint(tmp_path / "run", 2)
    atomic_write_json(tmp_path / "run" / "rewardkit_stage.json", {}, inside=tmp_path / "run")
    said: list[str] = []
    plan_stages([_stage(tmp_path)], "c.yaml", None, True, said.append)
    assert said == [f"overwrite: deleted the earlier run in {tmp_path / 'run'}."]
    assert list((tmp_path / "run").iterdir()) == []


def test_a_config_change_on_resume_is_refused_unless_accepted(tmp_path):
    from rewardkit.train.config_change import settings
    from rewardkit.train.resume import LATEST, STARTED
    from rewardkit.train.run_plan import plan_stages

    def recorded(stage) -> dict:
        return settings(json.loads(json.dumps(stage.model_dump(), default=str)), None)

    old = _stage(tmp_path, learning_rate=0.1, logging_steps=1)
    two = _checkpoint(tmp_path / "run", 2)
    (tmp_path / "run" / STARTED).write_text(json.dumps({"stage": "sft", "settings": recorded(old)}))
    new = _stage(tmp_path, learning_rate=0.2, logging_steps=5, max_steps=9)
    with pytest.raises(ConfigError, match="changed what is trained") as caught:
        plan_stages([new], "c.yaml", LATEST, False, print, settings={"sft": recorded(new)})
    assert "trainer.learning_rate, trainer.max_steps." in str(caught.value) and "logging" not in str(caught.value)
    assert "--accept-config-change" in str(caught.value) and two.is_dir()
    said: list[str] = []
    plan = plan_stages([new], "c.yaml", LATEST, False, said.append, settings={"sft": recorded(new)}, accept_change=True)
    assert plan["sft"].checkpoint == two
    assert said[:2] == [
        "resume: stage 'sft' continues with changed training settings (accepted): trainer.learning_rate, "
        "trainer.max_steps.",
        "resume: stage 'sft': changed since the interrupted run (not what is trained): trainer.logging_steps.",
    ]
    said.clear()
    logging_only = _stage(tmp_path, learning_rate=0.1, logging_steps=5)
    plan_stages([logging_only], "c.yaml", LATEST, False, said.append, settings={"sft": recorded(logging_only)})
    assert (
        said[0]
        == "resume: stage 'sft': changed since the interrupted run (not what is trained): trainer.logging_steps."
    )
