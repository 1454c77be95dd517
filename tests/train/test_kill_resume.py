"""A run SIGKILLed right after a save and resumed ends with the same record as an uninterrupted run."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TESTS

pytestmark = pytest.mark.slow
SCRIPT = TESTS / "scripts" / "kill_resume_run.py"


def run(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300, env=env
    )


def run_here(*args) -> None:
    """The script's run in this process: only the run that SIGKILLs itself needs a process of its own (a
    subprocess spends most of its time importing torch and TRL)."""
    spec = importlib.util.spec_from_file_location("kill_resume_run", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main([str(a) for a in args])


def state(out: Path) -> dict:
    record = json.loads((out / "inference" / "scores.json").read_text())
    return {
        "steps": [c["step"] for c in record["checkpoints"]],
        "scores": {c["step"]: c["score"] for c in record["checkpoints"]},
        "best": record["best"]["step"],
        "inference": sorted(p.name for p in (out / "inference").glob("step_*.json")),
        "outputs": {
            p.name: [r["output"] for r in json.loads(p.read_text())["records"]]
            for p in (out / "inference").glob("step_*.json")
        },
        "adapters": sorted(p.name for p in (out / "adapters").iterdir()),
        "best_adapter": (out / "best" / "adapter_model.safetensors").read_bytes(),
    }


def test_kill_after_save_then_resume_matches_uninterrupted(tiny_lm_dir, tmp_path):
    straight = tmp_path / "straight"
    run_here(tiny_lm_dir, straight)

    resumed = tmp_path / "resumed"
    killed = run(tiny_lm_dir, resumed, "--kill-after-save", 4)
    assert killed.returncode == -signal.SIGKILL
    assert (resumed / "checkpoint-4").is_dir() and not (resumed / "checkpoint-6").exists()
    run_here(tiny_lm_dir, resumed, "--resume")

    a, b = state(straight), state(resumed)
    assert a["steps"] == b["steps"] == [2, 4, 6]  # nothing lost, nothing duplicated
    assert a["inference"] == b["inference"] == ["step_2.json", "step_4.json", "step_6.json"]
    assert a["outputs"] == b["outputs"]  # resume restores weights and RNG: the same generations
    assert all(isinstance(v, float) for v in a["scores"].values())
    assert a["scores"] == b["scores"] and a["best"] == b["best"]
    assert a["adapters"] == b["adapters"] and len(a["adapters"]) == 2  # top_k=2 pruning continued after resume
    assert a["best_adapter"] == b["best_adapter"]
