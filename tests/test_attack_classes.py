"""The classes of defects an independent attack found (issue 21), each reproduced, now held by a test.

Command-line cases run the real CLI in a subprocess (`python -m rewardkit`, no torch import, ~1 s each).
"""

from __future__ import annotations

import json
import os
import pty
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

SPEC = "rewards:\n  em: {use: exact_match, reference: answer}\n"
ROWS = '{"completion": "1", "answer": "1"}\n{"completion": "2", "answer": "1"}\n'


def run(*args, cwd=None, env=None, stdout=subprocess.PIPE, timeout=60):
    return subprocess.run([sys.executable, "-m", "rewardkit", *map(str, args)], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, cwd=cwd, env={**os.environ, **(env or {})},
                          timeout=timeout)


@pytest.fixture
def scoring(tmp_path) -> Path:
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "rows.jsonl").write_text(ROWS)
    return tmp_path


# --- 1. a stdout closed at start ------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["list"], ["list", "--json"], ["score", "spec.yaml", "-i", "rows.jsonl", "--json"],
                                  ["score", "spec.yaml", "-i", "rows.jsonl", "-o", "out.jsonl"], ["--help"]],
                         ids=["list", "list-json", "score-json", "score-output", "help"])
def test_closed_stdout_at_start_exits_141_quietly(scoring, argv):
    # `>&-`: the child starts without fd 1, so Python's sys.stdout is None.
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "rewardkit", *argv])
    proc = subprocess.run(["sh", "-c", f"exec {command} >&-"], stderr=subprocess.PIPE, text=True, cwd=scoring,
                          timeout=60)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == ""
    if "-o" in argv:  # the file is written before the table is printed; 141 says the table was lost
        assert [json.loads(line)["combined"] for line in (scoring / "out.jsonl").read_text().splitlines()] == [1, 0]


# --- 6. output encodings and widths ------------------------------------------------------------------------------
@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"},
                                 {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0",
                                  "PYTHONIOENCODING": ""}], ids=["ascii", "c-locale"])
def test_text_the_terminal_cannot_encode_is_escaped(tmp_path, env):
    (tmp_path / "spec.yaml").write_text("rewards:\n  정답: {use: exact_match, reference: answer}\n")
    (tmp_path / "rows.jsonl").write_text(ROWS)
    listed = run("list", cwd=tmp_path, env=env)
    assert listed.returncode == 0 and "exact_match" in listed.stdout, listed.stderr
    scored = run("score", "spec.yaml", "-i", "rows.jsonl", cwd=tmp_path, env=env)
    assert scored.returncode == 0, scored.stderr
    assert "\\uc815\\ub2f5" in scored.stdout  # the component name, escaped rather than a UnicodeEncodeError
    failed = run("score", "spec.yaml", "-i", "없다.jsonl", cwd=tmp_path, env=env)  # a non-ASCII path in the error
    assert failed.returncode == 2 and "Error:" in failed.stderr and "Traceback" not in failed.stderr


def _on_terminal(args: list[str], cwd: Path, columns: str) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal of COLUMNS=columns."""
    main, sub = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "rewardkit", *args], stdout=sub, stderr=sub, cwd=cwd,
                            env={**os.environ, "COLUMNS": columns})
    os.close(sub)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    return proc.wait(timeout=60), out.decode("utf-8", "replace")


@pytest.mark.parametrize("argv, code, expected", [
    (["score", "no_such_preset", "-i", "rows.jsonl"], 2, "Error:"),
    (["select", "no_such_folder"], 2, "Error:"),
    (["score", "spec.yaml", "-i", "rows.jsonl"], 0, "corpus score"),
    (["list"], 0, "exact_match")], ids=["score-error", "select-error", "score-table", "list"])
def test_zero_width_terminal_still_prints(scoring, argv, code, expected):
    returncode, shown = _on_terminal(argv, scoring, "0")
    assert returncode == code and expected in shown, shown
