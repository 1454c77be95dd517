"""The `rewardkit` entry point under bad input: one error line, the right exit code, no traceback; bugs still raise.

Exit codes (rewardkit.cli.console): 2 usage/input error, 130 Ctrl-C, 143 SIGTERM, 141 stdout closed early.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import SCORE_ROWS, SCORE_SPEC, run_cli


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """Every hostile input of the table, written once per test."""
    f = {
        "spec": tmp_path / "spec.yaml",
        "rows": tmp_path / "rows.jsonl",
        "dir": tmp_path / "a_dir",
        "bad_utf8": tmp_path / "bad.jsonl",
        "deep": tmp_path / "deep.jsonl",
        "broken_spec": tmp_path / "broken.yaml",
        "empty": tmp_path / "empty.jsonl",
        "not_object": tmp_path / "list.jsonl",
        "a_file": tmp_path / "a_file",
        "run": tmp_path / "grpo",
        "readonly": tmp_path / "readonly",
        "missing": tmp_path / "missing.jsonl",
    }
    f["spec"].write_text(SCORE_SPEC)
    f["rows"].write_text(SCORE_ROWS)
    f["dir"].mkdir()
    f["bad_utf8"].write_bytes(b'{"completion": "\xff\xfe"}\n')
    f["deep"].write_text("[" * 100_000 + "\n")
    f["broken_spec"].write_text("rewards:\n  em: {use: exact_match\n")
    f["empty"].write_text("")
    f["not_object"].write_text("[1, 2]\n")
    f["a_file"].write_text("not a folder\n")
    (f["run"] / "inference").mkdir(parents=True)
    (f["run"] / "inference" / "step_10.json").write_text('{"step": 10, "records": []}')
    f["readonly"].mkdir(mode=0o555)
    yield f
    f["readonly"].chmod(0o755)


# (id, argv with {file} placeholders, exit code, text expected in stderr)
CASES = [
    ("score-without-spec", ["score"], 2, "Missing argument 'SPEC'"),
    ("unknown-command", ["bogus"], 2, "No such command 'bogus'"),
    ("unknown-option", ["list", "--bogus"], 2, "No such option: --bogus"),
    ("extra-argument", ["list", "extra"], 2, "unexpected extra argument"),
    ("missing-required-option", ["score", "{spec}"], 2, "Missing option '--input'"),
    ("missing-input-file", ["score", "{spec}", "-i", "{missing}"], 2, "missing.jsonl"),
    ("input-is-a-directory", ["score", "{spec}", "-i", "{dir}"], 2, "a_dir"),
    ("input-invalid-utf8", ["score", "{spec}", "-i", "{bad_utf8}"], 2, "bad.jsonl"),
    ("input-json-nested-100k-deep", ["score", "{spec}", "-i", "{deep}"], 2, "deep.jsonl"),
    ("input-empty", ["score", "{spec}", "-i", "{empty}"], 2, "Error: "),
    ("input-line-not-an-object", ["score", "{spec}", "-i", "{not_object}"], 2, "list.jsonl"),
    ("output-is-a-directory", ["score", "{spec}", "-i", "{rows}", "-o", "{dir}"], 2, "a_dir"),
    ("output-below-a-file", ["score", "{spec}", "-i", "{rows}", "-o", "{a_file}/sub/out.jsonl"], 2, "a_file"),
    (
        "output-in-read-only-parent",
        ["score", "{spec}", "-i", "{rows}", "-o", "{readonly}/new/out.jsonl"],
        2,
        "readonly",
    ),
    ("unknown-preset", ["score", "no-such-preset", "-i", "{rows}"], 2, "Unknown preset 'no-such-preset'"),
    ("spec-syntax-error", ["score", "{broken_spec}", "-i", "{rows}"], 2, "broken.yaml"),
    ("spec-is-a-directory", ["score", "{dir}", "-i", "{rows}"], 2, "a_dir"),
    ("select-run-folder-not-inference", ["select", "{run}"], 2, "did you mean"),
    ("select-missing-folder", ["select", "{missing}"], 2, "missing.jsonl"),
    ("demo-steps-zero", ["demo", "--steps", "0"], 2, "--steps"),
    ("demo-steps-negative", ["demo", "--steps", "-1"], 2, "--steps"),
    ("demo-steps-not-a-number", ["demo", "--steps", "many"], 2, "--steps"),
    ("serve-max-body-inf", ["serve", "{spec}", "--max-body-mb", "inf"], 2, "--max-body-mb"),
]


@pytest.mark.parametrize("argv, code, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line(files, argv, code, expected):
    if "{readonly}" in " ".join(argv) and os.geteuid() == 0:
        pytest.skip("root writes into a 0555 folder")
    proc = run_cli(*(a.format(**files) for a in argv))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.splitlines()
    assert 1 <= len(lines) <= 2, proc.stderr
    assert lines[0].startswith("Error: ") and expected in proc.stderr, proc.stderr


def test_select_hint_names_the_inference_folder(files):
    proc = run_cli("select", files["run"])
    assert proc.stderr.strip().endswith(f"Hint: did you mean {files['run'] / 'inference'}?")


def test_bare_command_prints_help_and_exits_2():
    proc = run_cli()
    assert proc.returncode == 2 and "Usage:" in proc.stderr and "Traceback" not in proc.stderr


def _app_raising(exc: BaseException):
    import typer

    from rewardkit.cli.console import Group

    app = typer.Typer(cls=Group, add_completion=False)

    @app.command()
    def boom() -> None:
        raise exc

    @app.command()
    def other() -> None:
        pass

    return app


@pytest.mark.parametrize(
    "exc, code, expected",
    [
        (
            FileNotFoundError(2, "No such file or directory", "/data/rows.jsonl"),
            2,
            "Error: /data/rows.jsonl: No such file or directory.",
        ),
        (PermissionError(13, "Permission denied"), 2, "Error: Permission denied."),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 2, "Error: the input is not UTF-8 text"),
        (RecursionError("maximum recursion depth exceeded"), 2, "Error: the input is nested too deeply"),
        (json.JSONDecodeError("Expecting value", "x y", 2), 2, "Error: invalid JSON at line 1, column 3"),
        (KeyboardInterrupt(), 130, "Interrupted."),
        (BrokenPipeError(32, "Broken pipe"), 141, ""),
    ],
    ids=["oserror-with-path", "oserror", "unicode", "recursion", "json", "keyboardinterrupt", "brokenpipe"],
)
def test_boundary_safety_net(monkeypatch, exc, code, expected):
    from rewardkit.cli import console as term

    if isinstance(exc, BrokenPipeError):
        monkeypatch.setattr(term, "_pipe_closed", lambda: term.EXIT_SIGPIPE)  # keep pytest's stdout
    monkeypatch.setattr(sys, "argv", ["rewardkit", "boom"])
    out, err = term.OutputConsole(file=io.StringIO()), term.OutputConsole(file=io.StringIO())
    with pytest.raises(SystemExit) as info:
        term.run(_app_raising(exc), out, err)
    text = err.file.getvalue()
    assert info.value.code == code
    assert text.startswith(expected) and len(text.splitlines()) == (1 if expected else 0), text


def test_bugs_still_raise(monkeypatch):
    from rewardkit.cli import console as term

    monkeypatch.setattr(sys, "argv", ["rewardkit", "boom"])
    with pytest.raises(ZeroDivisionError):
        term.run(
            _app_raising(ZeroDivisionError("a bug")),
            term.OutputConsole(file=io.StringIO()),
            term.OutputConsole(file=io.StringIO()),
        )


def test_in_process_main_leaves_the_process_as_found(monkeypatch, capsys):
    """Tests call main() in-process: warnings hook, logger levels, env and signal handlers are put back."""
    import logging
    import warnings

    from rewardkit.cli.main import main

    before = (
        warnings.showwarning,
        logging.getLogger("trl").level,
        os.environ.get("TRANSFORMERS_VERBOSITY"),
        signal.getsignal(signal.SIGTERM),
        signal.getsignal(signal.SIGINT),
    )
    monkeypatch.setattr(sys, "argv", ["rewardkit", "list", "--json"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 0 and json.loads(capsys.readouterr().out)["rewards"]
    after = (
        warnings.showwarning,
        logging.getLogger("trl").level,
        os.environ.get("TRANSFORMERS_VERBOSITY"),
        signal.getsignal(signal.SIGTERM),
        signal.getsignal(signal.SIGINT),
    )
    assert after == before


def test_plugin_that_exits_at_import_does_not_end_the_command(tmp_path):
    site = tmp_path / "site"
    dist = site / "rewardkit_exitplug-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rewardkit-exitplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[rewardkit]\nexitplug = exitplug_mod\n")
    (site / "exitplug_mod.py").write_text("import sys\nsys.exit(3)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    done = run_cli("list", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    failed = {f["name"]: f["error"] for f in data["failed_plugins"]}
    assert "sys.exit(3)" in failed.get("rewardkit-exitplug", ""), failed
    assert any(r["name"] == "exact_match" for r in data["rewards"])  # everything else still registered
    assert "Traceback" not in done.stderr


def test_train_with_an_unsupported_dataset_extension_is_one_line(tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text("prompt,completion\na,b\n")
    config = tmp_path / "sft.yaml"
    config.write_text(f"stage: sft\nmodel: {tmp_path}\ndataset: {{path: {data}}}\n")
    (tmp_path / "config.json").write_text("{}")  # a local model folder passes the preflight's existence check
    done = run_cli("train", str(config))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "rows.csv" in done.stderr and ".jsonl" in done.stderr
