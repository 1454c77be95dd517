"""Bounded input reading: devices, FIFOs and oversized files refused before reading; pipes read up to the limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import SCORE_ROWS, run_cli


@pytest.mark.parametrize(
    "argv",
    [
        ["score", "spec.yaml", "--input", "/dev/zero"],
        ["generate", "model", "--input", "zero.jsonl", "-o", "out.jsonl"],
        ["select", "inference", "--spec", "spec.yaml", "--labels", "zero.jsonl"],
    ],
    ids=["score-input", "generate-input", "select-labels"],
)
def test_a_device_as_input_is_refused(scoring, argv):
    (scoring / "inference").mkdir()
    (scoring / "inference" / "step_1.json").write_text('{"step": 1, "records": [{"id": 1, "output": "1"}]}')
    (scoring / "zero.jsonl").symlink_to("/dev/zero")  # readers that check the suffix first
    proc = run_cli(*argv, cwd=scoring, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "is a character device, not a regular file or pipe" in proc.stderr and "Traceback" not in proc.stderr


def test_a_spec_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    from rewardkit.core.errors import ConfigError
    from rewardkit.core.specs import load_file

    os.mkfifo(tmp_path / "spec.yaml")  # no writer: opening it to read would block forever
    with pytest.raises(ConfigError, match="spec.yaml: is not a regular file"):
        load_file(tmp_path / "spec.yaml")


def test_an_inference_file_linked_to_a_device_is_refused(tmp_path):
    from rewardkit.core.errors import DataError
    from rewardkit.selection.inference_files import load_inference

    (tmp_path / "step_9.json").symlink_to("/dev/zero")  # a crafted run folder
    with pytest.raises(DataError, match="step_9.json: is a character device, not a regular file or pipe"):
        load_inference(tmp_path / "step_9.json")


def test_inputs_over_the_size_limit_are_refused_before_reading(tmp_path, monkeypatch):
    from rewardkit.core.errors import DataError
    from rewardkit.core.fileio import MAX_INPUT_ENV, read_jsonl

    sparse = tmp_path / "huge.jsonl"
    with open(sparse, "wb") as f:
        f.truncate(3 * 1024**3)  # 3 GiB that take no disk: the default limit refuses it unread
    with pytest.raises(DataError, match=r"huge.jsonl: 3221225472 bytes, over the input limit of 2147483648 bytes"):
        read_jsonl(sparse)
    small = tmp_path / "rows.jsonl"
    small.write_text(SCORE_ROWS)
    monkeypatch.setenv(MAX_INPUT_ENV, "10")
    with pytest.raises(DataError, match=f"over the input limit of 10 bytes.*{MAX_INPUT_ENV}"):
        read_jsonl(small)
    monkeypatch.setenv(MAX_INPUT_ENV, "-1")
    with pytest.raises(DataError, match=f"{MAX_INPUT_ENV}='-1': expected a positive number of bytes"):
        read_jsonl(small)


def test_a_pipe_is_read_up_to_the_limit(scoring):
    """`--input /dev/stdin` (or `<(zcat ...)`) stays legitimate; an endless pipe stops at the limit."""
    ok = subprocess.run(
        [sys.executable, "-m", "rewardkit", "score", "spec.yaml", "-i", "/dev/stdin", "--json"],
        input=SCORE_ROWS,
        capture_output=True,
        text=True,
        cwd=scoring,
        timeout=60,
    )
    assert ok.returncode == 0 and json.loads(ok.stdout)["summary"][0]["mean"] == 0.5, ok.stderr
    endless = subprocess.Popen(["yes", SCORE_ROWS.splitlines()[0]], stdout=subprocess.PIPE)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "rewardkit", "score", "spec.yaml", "-i", "/dev/stdin"],
            stdin=endless.stdout,
            capture_output=True,
            text=True,
            cwd=scoring,
            timeout=60,
            env={**os.environ, "REWARDKIT_MAX_INPUT_BYTES": "1000000"},
        )
    finally:
        endless.kill()
        endless.wait()
    assert proc.returncode == 2 and "more than 1000000 bytes, over the input limit" in proc.stderr, proc.stderr
