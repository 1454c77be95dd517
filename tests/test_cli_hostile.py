"""The `rewardkit` command under hostile input and signals: one error line, the right exit code, no traceback.

Exit codes (rewardkit.cli.console): 2 usage/input error, 130 Ctrl-C, 143 SIGTERM, 141 stdout closed early.
Every case runs the real CLI in a subprocess (`python -m rewardkit`); none imports torch, so each takes ~1 s.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SPEC = "rewards:\n  em: {use: exact_match, reference: answer}\n"
ROWS = '{"completion": "1", "answer": "1"}\n{"completion": "2", "answer": "1"}\n'


def run(*args, cwd=None, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "rewardkit", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


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
    f["spec"].write_text(SPEC)
    f["rows"].write_text(ROWS)
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
]


@pytest.mark.parametrize("argv, code, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_command_line(files, argv, code, expected):
    if "{readonly}" in " ".join(argv) and os.geteuid() == 0:
        pytest.skip("root writes into a 0555 folder")
    proc = run(*(a.format(**files) for a in argv))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.splitlines()
    assert 1 <= len(lines) <= 2, proc.stderr
    assert lines[0].startswith("Error: ") and expected in proc.stderr, proc.stderr


def test_select_hint_names_the_inference_folder(files):
    proc = run("select", files["run"])
    assert proc.stderr.strip().endswith(f"Hint: did you mean {files['run'] / 'inference'}?")


def test_bare_command_prints_help_and_exits_2():
    proc = run()
    assert proc.returncode == 2 and "Usage:" in proc.stderr and "Traceback" not in proc.stderr


def test_help_shows_metavars_and_plain_flags():
    out = run("score", "--help").stdout
    assert "Usage: python -m rewardkit score [OPTIONS] SPEC" in out
    assert "{" not in out and "<bool>" not in out
    assert "--json " in out and "--help " in out
    assert "~10 s" in run("demo", "--help").stdout
    top = run("--help").stdout
    assert "--verbose" in top and "<bool>" not in top


# --- output that is not a terminal never wraps ----------------------------------------------------------------


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
    rows.write_text(ROWS)
    proc = run("score", spec, "-i", rows)
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
    (tmp_path / "spec.yaml").write_text(SPEC)
    proc = run("score", tmp_path / "spec.yaml", "-i", missing)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert str(missing) in proc.stderr


def test_score_table_shows_the_json_numbers(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "rows.jsonl").write_text(ROWS)
    data = json.loads(run("score", tmp_path / "spec.yaml", "-i", tmp_path / "rows.jsonl", "--json").stdout)
    table = run("score", tmp_path / "spec.yaml", "-i", tmp_path / "rows.jsonl").stdout
    assert f"corpus score: {data['corpus']:.4f}" in table
    combined = next(s for s in data["summary"] if s["name"] == "combined")
    assert any(line.split()[1:2] == ["combined"] and f"{combined['mean']:.4f}" in line for line in table.splitlines())


# --- signals and pipes ------------------------------------------------------------------------------------------


def _default_sigint():
    # A shell without job control starts background jobs with SIGINT ignored, and children inherit that;
    # the test must not depend on how pytest itself was started.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    "sig, code, word",
    [(signal.SIGINT, 130, "Interrupted."), (signal.SIGTERM, 143, "Terminated.")],
    ids=["SIGINT", "SIGTERM"],
)
def test_signal_while_reading_input(tmp_path, sig, code, word):
    """The input is a FIFO: once the CLI has opened it (imports done, command running) it blocks reading, and
    the signal arrives at a known point. Reading a FIFO is legitimate (`--input <(zcat rows.jsonl.gz)`)."""
    (tmp_path / "spec.yaml").write_text(SPEC)
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
        preexec_fn=_default_sigint,
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


# --- warnings: rewardkit's shown, third-party hidden unless --verbose -----------------------------------------

WARN_SCRIPT = textwrap.dedent("""
    import logging, sys, types
    from rewardkit.cli.console import quiet_third_party
    if sys.argv[1] == "quiet":
        quiet_third_party()

    def module(name, source):
        mod = types.ModuleType(name)
        exec(compile(source, name, "exec"), mod.__dict__)
        return mod

    own = module("rewardkit_fakeplugin", "import warnings\\n"
                 "def warn():\\n    warnings.warn('OWN-WARNING', RuntimeWarning, stacklevel=3)\\n")
    lib = module("fakelib", "import sys, warnings\\n"
                 "def noisy():\\n    warnings.warn('THIRD-PARTY-WARNING', FutureWarning)\\n"
                 "def prints():\\n    print('THIRD-PARTY-PRINT', file=sys.stderr)\\n"
                 "def calls(f):\\n    f()\\n")
    lib.noisy()
    lib.prints()  # a package writing to stderr itself: no logger to quiet
    logging.getLogger("kernels._internals.hf_hub").warning("KERNELS-LOG")  # a logger nobody listed
    logging.getLogger("fakelib").error("THIRD-PARTY-ERROR")  # errors stay visible
    lib.calls(own.warn)  # stacklevel blames fakelib's caller; the warning is still rewardkit's
    logging.getLogger("bitsandbytes.backends.cpu.ops").warning("BNB-LOG")
    logging.getLogger("trl.trainer").warning("TRL-LOG")
    logging.getLogger("rewardkit.callbacks").warning("OWN-LOG")
""")


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_third_party_warnings_hidden_unless_verbose(mode):
    proc = subprocess.run(
        [sys.executable, "-c", WARN_SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "OWN-WARNING" in proc.stderr and "OWN-LOG" in proc.stderr and "THIRD-PARTY-ERROR" in proc.stderr
    for noise in ("THIRD-PARTY-WARNING", "BNB-LOG", "TRL-LOG", "KERNELS-LOG", "THIRD-PARTY-PRINT"):
        assert (noise in proc.stderr) == (mode == "verbose"), proc.stderr


def test_verbose_option_and_env():
    assert run("--verbose", "list", "--json").returncode == 0
    assert run("list", "--json", env={"REWARDKIT_VERBOSE": "1"}).returncode == 0


# --- the process boundary, in-process --------------------------------------------------------------------------


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


def test_score_output_is_strict_json_when_an_input_holds_nan(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"completion": "4", "answer": "4", "weight": NaN}\n{"completion": "5", "answer": NaN}\n')
    spec = tmp_path / "spec.yaml"
    spec.write_text("rewards: {em: {use: exact_match}}\n")
    out = tmp_path / "scored.jsonl"
    done = run("score", str(spec), "--input", str(rows), "--output", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text

    def strict(token):
        raise AssertionError(f"non-strict JSON token {token}")

    first, second = (json.loads(line, parse_constant=strict) for line in text.splitlines())
    assert first["weight"] is None and first["combined"] == 1.0
    assert second["answer"] is None and second["combined"] is None  # a NaN reference: not applicable


def test_plugin_that_exits_at_import_does_not_end_the_command(tmp_path):
    site = tmp_path / "site"
    dist = site / "rewardkit_exitplug-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rewardkit-exitplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[rewardkit]\nexitplug = exitplug_mod\n")
    (site / "exitplug_mod.py").write_text("import sys\nsys.exit(3)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    done = run("list", "--json", env=env)
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
    done = run("train", str(config))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "rows.csv" in done.stderr and ".jsonl" in done.stderr
