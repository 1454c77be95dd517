"""A run killed at checkpoint-4 of 8, copied mid-run and resumed from the copy (the original still beside it):
it ends at exactly step 8, and every best path it records and prints is the copy's own."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from tests.train.test_resume import _cli, _grpo, _killed


def _config(tiny_lm_dir: Path, data: Path, out: Path) -> Path:
    config = _grpo(tiny_lm_dir, data, out)
    config["trainer"].update(max_steps=8, save_steps=4, eval_steps=4)
    path = out.parent / f"{out.name}.json"
    path.write_text(json.dumps(config))
    return path


def _mentions(folder: Path, text: str) -> list[str]:
    """The files under `folder` (JSON and text) whose content mentions `text`; a checkpoint copied from the
    original keeps what the original's Trainer wrote in it (its trainer_state.json, training_args.bin)."""
    found = []
    for path in folder.rglob("*"):
        if path.relative_to(folder).parts[0] == "checkpoint-4":
            continue
        if path.is_file() and path.suffix in (".json", ".jsonl", ".md", ".txt"):
            if text in path.read_text(encoding="utf-8", errors="replace"):
                found.append(str(path.relative_to(folder)))
    return sorted(found)


@pytest.mark.slow
def test_a_run_copied_mid_run_resumes_to_step_8_naming_only_its_own_paths(tiny_lm_dir, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+{i}=", "answer": str(2 * i)}) + "\n" for i in range(10)))
    original, copy = tmp_path / "original", tmp_path / "copy"
    killed = _killed("after-save", 4, "original", _config(tiny_lm_dir, data, original), cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert _mentions(original, str(original))  # the interrupted run recorded absolute paths of its folder
    shutil.copytree(original, copy, symlinks=True)
    proc = _cli(_config(tiny_lm_dir, data, copy), "--resume", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resume: stage 'grpo' continues from {copy / 'checkpoint-4'}." in proc.stdout
    # Exactly max_steps: no step 9, no checkpoint past 8.
    assert sorted(p.name for p in copy.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-8"]
    assert json.loads((copy / "checkpoint-8" / "trainer_state.json").read_text())["global_step"] == 8
    record = json.loads((copy / "rewardkit_stage.json").read_text())
    assert record["steps"] == 8
    assert sorted(p.name for p in (copy / "inference").glob("step_*.json")) == ["step_4.json", "step_8.json"]
    # The best model is the copy's, in what is printed and in every file; the original folder was never touched.
    assert f"best model: {copy / 'best'}" in proc.stdout
    assert str(original) not in proc.stdout + proc.stderr
    assert _mentions(copy, str(original)) == []
    best_dir = json.loads((copy / "inference" / "scores.json").read_text())["best_dir"]
    assert best_dir["path"] == str(copy / "best")
    assert best_dir["source"] == str(copy / "adapters" / f"step_{best_dir['step']}")
    assert not (original / "rewardkit_stage.json").exists() and not (original / "checkpoint-8").exists()
