"""What the command prints: help, tables and errors on pipes and terminals (narrow, non-UTF-8), strict JSON."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SCORE_ROWS, SCORE_SPEC, run_cli


def test_help_shows_metavars_and_plain_flags():
    out = run_cli("score", "--help").stdout
    assert "Usage: python -m rewardkit score [OPTIONS] SPEC" in out
    assert "{" not in out and "<bool>" not in out
    assert "--json " in out and "--help " in out
    assert "~10 s" in run_cli("demo", "--help").stdout
    top = run_cli("--help").stdout
    assert "--verbose" in top and "<bool>" not in top


def test_piped_output_does_not_wrap(tmp_path):
    aliases = [f"component_with_a_long_descriptive_name_{i}" for i in range(4)]
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "rewards": {a: {"use": "exact_match", "reference": "answer"} for a in aliases},
                "combine": " + ".join(f"0.25*{a}" for a in aliases),
            }
        )
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text(SCORE_ROWS)
    proc = run_cli("score", spec, "-i", rows)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    expression = next(line for line in lines if "rows scored with" in line).split("rows scored with ")[1]
    assert len(expression) > 100 and all(a in expression for a in aliases)  # the title on one line
    corpus = [line for line in lines if line.startswith("corpus score: ")]
    assert len(corpus) == 1 and "0.5000" in corpus[0] and expression in corpus[0]


def test_long_path_in_error_stays_on_one_line(tmp_path):
    deep = tmp_path.joinpath(*["a_folder_with_a_long_name_to_force_wrapping"] * 4)
    deep.mkdir(parents=True)
    missing = deep / "missing-input.jsonl"
    assert len(str(missing)) > 100
    (tmp_path / "spec.yaml").write_text(SCORE_SPEC)
    proc = run_cli("score", tmp_path / "spec.yaml", "-i", missing)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert str(missing) in proc.stderr


def test_score_table_shows_the_json_numbers(tmp_path):
    (tmp_path / "spec.yaml").write_text(SCORE_SPEC)
    (tmp_path / "rows.jsonl").write_text(SCORE_ROWS)
    data = json.loads(run_cli("score", tmp_path / "spec.yaml", "-i", tmp_path / "rows.jsonl", "--json").stdout)
    table = run_cli("score", tmp_path / "spec.yaml", "-i", tmp_path / "rows.jsonl").stdout
    assert f"corpus score: {data['corpus']:.4f}" in table
    combined = next(s for s in data["summary"] if s["name"] == "combined")
    assert any(line.split()[1:2] == ["combined"] and f"{combined['mean']:.4f}" in line for line in table.splitlines())


def test_score_output_is_strict_json_when_an_input_holds_nan(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"completion": "4", "answer": "4", "weight": NaN}\n{"completion": "5", "answer": NaN}\n')
    spec = tmp_path / "spec.yaml"
    spec.write_text("rewards: {em: {use: exact_match}}\n")
    out = tmp_path / "scored.jsonl"
    done = run_cli("score", str(spec), "--input", str(rows), "--output", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text

    def strict(token):
        raise AssertionError(f"non-strict JSON token {token}")

    first, second = (json.loads(line, parse_constant=strict) for line in text.splitlines())
    assert first["weight"] is None and first["combined"] == 1.0
    assert second["answer"] is None and second["combined"] is None  # a NaN reference: not applicable


@pytest.mark.parametrize(
    "env",
    [
        {"PYTHONIOENCODING": "ascii"},
        {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""},
    ],
    ids=["ascii", "c-locale"],
)
def test_text_the_terminal_cannot_encode_is_escaped(tmp_path, env):
    (tmp_path / "spec.yaml").write_text("rewards:\n  정답: {use: exact_match, reference: answer}\n")
    (tmp_path / "rows.jsonl").write_text(SCORE_ROWS)
    listed = run_cli("list", cwd=tmp_path, env=env)
    assert listed.returncode == 0 and "exact_match" in listed.stdout, listed.stderr
    scored = run_cli("score", "spec.yaml", "-i", "rows.jsonl", cwd=tmp_path, env=env)
    assert scored.returncode == 0, scored.stderr
    assert "\\uc815\\ub2f5" in scored.stdout  # the component name, escaped rather than a UnicodeEncodeError
    failed = run_cli("score", "spec.yaml", "-i", "없다.jsonl", cwd=tmp_path, env=env)  # a non-ASCII path in the error
    assert failed.returncode == 2 and "Error:" in failed.stderr and "Traceback" not in failed.stderr


def _on_terminal(args: list[str], cwd: Path, columns: str) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal of COLUMNS=columns."""
    main, sub = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardkit", *args],
        stdout=sub,
        stderr=sub,
        cwd=cwd,
        env={**os.environ, "COLUMNS": columns},
    )
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


@pytest.mark.parametrize(
    "argv, code, expected",
    [
        (["score", "no_such_preset", "-i", "rows.jsonl"], 2, "Error:"),
        (["select", "no_such_folder"], 2, "Error:"),
        (["score", "spec.yaml", "-i", "rows.jsonl"], 0, "corpus score"),
        (["list"], 0, "exact_match"),
    ],
    ids=["score-error", "select-error", "score-table", "list"],
)
def test_zero_width_terminal_still_prints(scoring, argv, code, expected):
    returncode, shown = _on_terminal(argv, scoring, "0")
    assert returncode == code and expected in shown, shown
