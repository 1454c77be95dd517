"""benchmarks/gpu_check.py: skips cleanly without CUDA, refuses bad arguments, and its CPU dry run passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_cuda_available(), reason="CUDA is available: the script would run the real GPU check")
def test_without_cuda_prints_one_line_and_exits_0():
    proc = _run()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "no CUDA: skipped\n"


@pytest.mark.parametrize(
    "args",
    [["--items", "nope"], ["--items", ""], ["--device", "cpu"], ["--allow-cpu", "--device", "cuda:0"], ["--bogus"]],
)
def test_bad_arguments_exit_2(args):
    proc = _run(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "error:" in proc.stderr


def test_keep_dir_must_be_new_or_empty(tmp_path):
    (tmp_path / "something").write_text("x")
    proc = _run("--allow-cpu", "--keep", str(tmp_path))
    assert proc.returncode == 2 and "new or empty" in proc.stderr


@pytest.mark.slow
def test_cpu_dry_run_of_generation_and_bertscore(tmp_path):
    proc = _run("--allow-cpu", "--items", "generation,bertscore", "--keep", str(tmp_path / "kept"), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    lines = proc.stdout.splitlines()
    assert any(line.startswith("PASS generation") for line in lines), proc.stdout
    assert any(line.startswith("PASS bertscore") for line in lines), proc.stdout
    assert not any(line.lstrip().startswith("FAIL") for line in lines), proc.stdout
    assert any("fp32 (TF32 off): 24/24 outputs equal" in line for line in lines), proc.stdout
    assert lines[-1].startswith("total: 2 passed, 0 failed in ")
    assert (tmp_path / "kept" / "models" / "tiny_lm" / "config.json").is_file()  # --keep kept the models


def test_vllm_item_skips_without_vllm():
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed: the item would run (.ci/vllm_check.sh covers it)")
    proc = _run("--allow-cpu", "--items", "vllm")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "SKIP (vllm not installed)" in proc.stdout and proc.stdout.splitlines()[-1].startswith("total: 1 passed")
