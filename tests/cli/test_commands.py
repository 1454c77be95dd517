"""`rewardkit list` / `score` as a user runs them, plus the import-weight promise."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

HEAVY = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "bert_score",
    "rouge_score",
    "nltk",
    "math_verify",
    "sympy",
    "httpx",
    "starlette",
    "uvicorn",
)


def run(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "rewardkit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.mark.parametrize(
    "code",
    [
        "import rewardkit",
        "import rewardkit; rewardkit.list_rewards(); rewardkit.list_callbacks(); rewardkit.list_views()",
        "import sys; sys.argv = ['rewardkit', 'list', '--json']; from rewardkit.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass",
        "import rewardkit; rewardkit.compose({'em': 'exact_match', 'm': 'math_exact_match'})"
        "(completions=['1'], answer=['1'])",
        "import rewardkit; rewardkit.get_reward('remote', url=['http://127.0.0.1:8000'])",
        # math_verify parses and verifies in its worker processes: this one never imports math-verify or sympy
        "import rewardkit\nassert rewardkit.get_reward('math_verify')(completions=['$\\\\boxed{1}$'], answer=['1']) == [1.0]",
    ],
)
def test_light_imports(code):
    check = f"{code}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)"
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []


def test_list_json_shape():
    proc = run("list", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) >= {"rewards", "callbacks", "views", "tokenizers", "presets", "failed_plugins", "conflicts"}
    brevity = next(r for r in data["rewards"] if r["name"] == "brevity")
    assert brevity["qualified_name"] == "rewardkit:brevity" and brevity["params"]["properties"]["max_length"]


def test_list_table():
    proc = run("list")
    assert proc.returncode == 0
    assert "math_exact_match" in proc.stdout and "after_think" in proc.stdout


def test_score_command(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "rewards:\n  acc: {use: math_exact_match, reference: solution}\n"
        "  short: {use: brevity, max_length: 20}\ncombine: acc + 0.5*short\n"
    )
    rows = [
        {"prompt": "1+1", "completion": "It is 2", "solution": "2"},
        {"prompt": "2+2", "completion": "5", "solution": "4"},
        {"prompt": "?", "completion": "no idea at all", "solution": "no number"},
    ]
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "scored.jsonl"
    proc = run("score", str(spec), "--input", str(data), "--output", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = {s["name"]: s for s in json.loads(proc.stdout)["summary"]}
    assert summary["acc"]["mean"] == 0.5 and summary["acc"]["none"] == 1
    assert summary["short"]["mean"] == pytest.approx((13 / 20 + 19 / 20 + 6 / 20) / 3)
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert scored[0]["scores"] == {"acc": 1.0, "short": 0.65} and scored[0]["combined"] == pytest.approx(1.325)
    assert scored[2]["scores"]["acc"] is None
    table = run("score", str(spec), "--input", str(data))
    assert "combined" in table.stdout and "acc" in table.stdout


def test_score_errors_are_one_line(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"completion": "1"}\n{broken\n')
    proc = run("score", "nonexistent-preset", "--input", str(data))
    assert proc.returncode == 2 and "Unknown preset 'nonexistent-preset'" in proc.stderr
    spec = tmp_path / "s.yaml"
    spec.write_text("em: exact_match\n")
    proc = run("score", str(spec), "--input", str(data))
    assert proc.returncode == 2 and "rows.jsonl:2: invalid JSON" in proc.stderr
    data.write_text('{"completion": "1"}\n')
    proc = run("score", str(spec), "--input", str(data))
    assert proc.returncode == 2 and "needs the reference column 'answer'" in proc.stderr
    assert "Traceback" not in proc.stderr


PLUGIN_PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"
[project]
name = "rewardkit-throwaway"
version = "0.0.1"
[project.entry-points.rewardkit]
throwaway = "rewardkit_throwaway"
"""

PLUGIN_MODULE = '''
"""A throwaway plugin built and pip-installed by the test suite."""
from rewardkit import hookimpl
from rewardkit.rewards.base import Reward


class Exclaim(Reward):
    """1.0 when the completion ends with '!'."""
    name = "exclaim"
    def score(self, completion, reference):
        return float(completion.endswith("!"))


@hookimpl
def register_rewards(register):
    register("exclaim", Exclaim)
'''


def test_pip_installed_plugin_is_listed(tmp_path):
    src = tmp_path / "rewardkit-throwaway"
    src.mkdir()
    (src / "pyproject.toml").write_text(textwrap.dedent(PLUGIN_PYPROJECT))
    (src / "rewardkit_throwaway.py").write_text(PLUGIN_MODULE)
    target = tmp_path / "site"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--target",
            str(target),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stderr
    proc = run("list", "--json", env={"PYTHONPATH": str(target)})
    entry = next(r for r in json.loads(proc.stdout)["rewards"] if r["name"] == "exclaim")
    assert entry["source"] == "rewardkit-throwaway" and entry["version"] == "0.0.1"
    assert entry["summary"] == "1.0 when the completion ends with '!'."
    code = "import rewardkit; print(rewardkit.get_reward('exclaim')(completions=['hi!', 'hi']))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(target)},
    )
    assert proc.stdout.strip() == "[1.0, 0.0]"


def test_error_text_is_not_read_as_markup(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text('rewards:\n  f: {use: format_regex, pattern: "[0-9"}\n')
    data = tmp_path / "rows.jsonl"
    data.write_text('{"completion": "1"}\n')
    proc = run("score", str(spec), "--input", str(data))
    assert proc.returncode == 2
    assert "in reward 'f' (parameter 'pattern'): '[0-9'" in " ".join(proc.stderr.split())


def test_score_prints_none_rows_and_why(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "rewards:\n  em: {use: exact_match, reference: answer}\n"
        "  boxed: {use: exact_match, reference: answer, completion_view: boxed, missing: none}\n"
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"completion": r"\boxed{1}", "answer": "1"},
                {"completion": "1", "answer": "1"},
                {"completion": "2", "answer": None},
            ]
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit", "score", str(spec), "-i", str(rows)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "None rows: em: None for 1 of 3 rows (no reference: 1)" in proc.stdout
    assert "None rows: boxed: None for 2 of 3 rows (no reference: 1, view missed: 1)" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit", "score", str(spec), "-i", str(rows), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = {s["name"]: s for s in json.loads(proc.stdout)["summary"]}
    assert summary["boxed"]["none_reasons"] == {"no reference": 1, "view missed": 1}
