"""Two processes (torchrun + gloo on CPU) running GRPO with composed rewards and the three callbacks."""

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import TESTS, accelerate_two_processes

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]
SCRIPT = TESTS / "scripts" / "mp_grpo_run.py"


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not installed")
def test_two_process_grpo_with_callbacks(tiny_lm_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    cmd = accelerate_two_processes(
        str(SCRIPT),
        str(tiny_lm_dir),
        str(out),
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}  # a crashing rank prints its stack
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=420, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-8000:]
    assert sorted(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("RANK")) == ["0", "1"]

    # Rewards ran on each rank's own slice: 4 training completions (2 in eval) per call, never the gathered 8.
    for rank in (0, 1):
        calls = [json.loads(line) for line in (out / f"reward_calls_rank{rank}.jsonl").read_text().splitlines()]
        assert [c["n"] for c in calls].count(4) == 4  # one generation batch per step, 4 steps
        assert {c["n"] for c in calls} <= {4, 2}

    # Every file written exactly once, each validation example exactly once per inference file.
    inference = sorted(p.name for p in (out / "inference").glob("step_*.json"))
    assert inference == ["step_2.json", "step_4.json"]
    for name in inference:
        records = json.loads((out / "inference" / name).read_text())["records"]
        assert sorted(r["id"] for r in records) == [f"v{i}" for i in range(7)]
    assert sorted(p.name for p in (out / "adapters").iterdir()) == ["step_2", "step_4"]
    scores = json.loads((out / "inference" / "scores.json").read_text())
    assert sorted(entry["step"] for entry in scores["checkpoints"]) == [2, 4]
    assert (out / "best" / "adapter_config.json").is_file()
    leftovers = [p for p in out.rglob("*.tmp")] + [p for p in out.rglob(".*") if p.is_dir()]
    assert leftovers == []
    # Only the main process records what the run wrote (core/written.py): each step file once.
    record = [json.loads(line) for line in (out / ".rewardkit-written.jsonl").read_text().splitlines()]
    assert [r["p"] for r in record].count("inference/step_2.json") == 1, record
