"""stdout carries the command's output only: a reward's or a plugin's print() goes to stderr, --json parses."""

from __future__ import annotations

import json
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


PLUGIN = """
import rewardkit
print("plugin says hello on import")

@rewardkit.hookimpl
def register_rewards(register):
    print("plugin says hello while registering")
"""


def test_a_plugin_that_prints_leaves_list_json_parseable(tmp_path, monkeypatch, capsys):
    from rewardkit.cli.main import main

    with row_context(tmp_path, monkeypatch, capsys) as ctx:
        ctx.entry_points({"rewardkit-noisy": PLUGIN})
        monkeypatch.setattr(sys, "argv", ["rewardkit", "list", "--json"])
        with pytest.raises(SystemExit) as exit_info:
            main()
    out = capsys.readouterr()
    assert exit_info.value.code == 0, out.err
    assert "rewards" in json.loads(out.out)
    assert "plugin says hello on import" in out.err and "while registering" in out.err
