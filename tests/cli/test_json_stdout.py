"""stdout carries the command's output only: a reward's or a plugin's print() goes to stderr, --json parses."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.conftest import row_context, run_cli

NOISY = """
import sys
def f(completions, **kwargs):
    print("debug from the reward")
    sys.stdout.write("a raw write\\n")
    return [1.0] * len(completions)
"""


@pytest.mark.parametrize("extra", ["", ", timeout: 30"], ids=["in-process", "timeout-worker"])
def test_a_reward_that_prints_leaves_score_json_parseable(tmp_path, extra):
    (tmp_path / "noisy.py").write_text(NOISY)
    (tmp_path / "spec.yaml").write_text(f"rewards:\n  x: {{use: noisy.py:f{extra}}}\n")
    (tmp_path / "rows.jsonl").write_text('{"completion": "a"}\n{"completion": "b"}\n')
    result = run_cli("score", "spec.yaml", "-i", "rows.jsonl", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"][0]["mean"] == 1.0
    assert "debug from the reward" in result.stderr and "a raw write" in result.stderr


FD_WRITER = """
import os, subprocess, sys
def f(completions, **kwargs):
    os.write(1, b"written to fd 1 by the reward\\n")  # what a C library does: below sys.stdout
    subprocess.run([sys.executable, "-c", "print('printed by a child process')"], check=True)
    return [1.0] * len(completions)
"""


@pytest.mark.parametrize("extra", ["", ", timeout: 30"], ids=["in-process", "timeout-worker"])
def test_writes_to_fd_1_and_a_childs_stdout_leave_score_json_parseable(tmp_path, extra):
    (tmp_path / "fd.py").write_text(FD_WRITER)
    (tmp_path / "spec.yaml").write_text(f"rewards:\n  x: {{use: fd.py:f{extra}}}\n")
    (tmp_path / "rows.jsonl").write_text('{"completion": "a"}\n{"completion": "b"}\n')
    result = run_cli("score", "spec.yaml", "-i", "rows.jsonl", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"][0]["mean"] == 1.0
    assert "written to fd 1 by the reward" in result.stderr
    assert "printed by a child process" in result.stderr


PLUGIN = """
import os
import rewardkit
print("plugin says hello on import")

@rewardkit.hookimpl
def register_rewards(register):
    print("plugin says hello while registering")
    os.write(1, b"plugin wrote to fd 1\\n")
"""


def test_a_plugin_that_prints_leaves_list_json_parseable(tmp_path, monkeypatch, capfd):
    """In-process (pytest's fd capture): fd 1 is moved for the command and put back after it."""
    from rewardkit.cli.main import main

    fd1 = os.fstat(1)
    with row_context(tmp_path, monkeypatch, capfd) as ctx:
        ctx.entry_points({"rewardkit-noisy": PLUGIN})
        monkeypatch.setattr(sys, "argv", ["rewardkit", "list", "--json"])
        with pytest.raises(SystemExit) as exit_info:
            main()
    out = capfd.readouterr()
    assert exit_info.value.code == 0, out.err
    assert "rewards" in json.loads(out.out)
    assert "plugin says hello on import" in out.err and "while registering" in out.err
    assert "plugin wrote to fd 1" in out.err
    assert (os.fstat(1).st_dev, os.fstat(1).st_ino) == (fd1.st_dev, fd1.st_ino)
