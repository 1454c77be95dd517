"""The command's standard streams: a signal while reading input, and a stdout closed before or while writing."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import SCORE_SPEC, default_sigint


@pytest.mark.parametrize(
    "sig, code, word",
    [(signal.SIGINT, 130, "Interrupted."), (signal.SIGTERM, 143, "Terminated.")],
    ids=["SIGINT", "SIGTERM"],
)
def test_signal_while_reading_input(tmp_path, sig, code, word):
    """The input is a FIFO: once the CLI has opened it (imports done, command running) it blocks reading, and
    the signal arrives at a known point. Reading a FIFO is legitimate (`--input <(zcat rows.jsonl.gz)`)."""
    (tmp_path / "spec.yaml").write_text(SCORE_SPEC)
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rewardkit",
            "score",
            str(tmp_path / "spec.yaml"),
            "-i",
            str(fifo),
            "-o",
            str(out_dir / "scored.jsonl"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    fd = None
    try:
        deadline = time.monotonic() + 30
        while fd is None:  # a non-blocking open for writing fails (ENXIO) until the reader has opened the FIFO
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the CLI never opened its --input"
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.02)
        os.write(fd, b'{"completion": "1", "answer": "1"}\n')  # part of the input; EOF never comes
        time.sleep(0.1)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if fd is not None:
            os.close(fd)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert err == word + "\n" and out == ""
    assert os.listdir(out_dir) == []  # no partial output, no .scored.jsonl.*.tmp


@pytest.mark.parametrize(
    "argv",
    [["list"], ["list", "--json"], ["--help"], ["list", "--help"]],
    ids=["list", "list-json", "help", "list-help"],
)
def test_closed_stdout_exits_quietly(argv):
    """`rewardkit list | head -1`: the reader is gone before the CLI writes; exit 141 (128 + SIGPIPE), no noise."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardkit", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 141, err
    assert err == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["list", "--json"],
        ["score", "spec.yaml", "-i", "rows.jsonl", "--json"],
        ["score", "spec.yaml", "-i", "rows.jsonl", "-o", "out.jsonl"],
        ["--help"],
    ],
    ids=["list", "list-json", "score-json", "score-output", "help"],
)
def test_closed_stdout_at_start_exits_141_quietly(scoring, argv):
    # `>&-`: the child starts without fd 1, so Python's sys.stdout is None.
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "rewardkit", *argv])
    proc = subprocess.run(
        ["sh", "-c", f"exec {command} >&-"], stderr=subprocess.PIPE, text=True, cwd=scoring, timeout=60
    )
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == ""
    if "-o" in argv:  # the file is written before the table is printed; 141 says the table was lost
        assert [json.loads(line)["combined"] for line in (scoring / "out.jsonl").read_text().splitlines()] == [1, 0]
