"""The classes of defects an independent attack found (issue 21), each reproduced, now held by a test.

Command-line cases run the real CLI in a subprocess (`python -m rewardkit`, no torch import, ~1 s each).
"""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SPEC = "rewards:\n  em: {use: exact_match, reference: answer}\n"
ROWS = '{"completion": "1", "answer": "1"}\n{"completion": "2", "answer": "1"}\n'


def run(*args, cwd=None, env=None, stdout=subprocess.PIPE, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "rewardkit", *map(str, args)],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@pytest.fixture
def scoring(tmp_path) -> Path:
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "rows.jsonl").write_text(ROWS)
    return tmp_path


# --- 1. a stdout closed at start ------------------------------------------------------------------------------
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


# --- 6. output encodings and widths ------------------------------------------------------------------------------
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


# --- 3. inputs are read with bounds ------------------------------------------------------------------------------
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
    proc = run(*argv, cwd=scoring, timeout=30)
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
    small.write_text(ROWS)
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
        input=ROWS,
        capture_output=True,
        text=True,
        cwd=scoring,
        timeout=60,
    )
    assert ok.returncode == 0 and json.loads(ok.stdout)["summary"][0]["mean"] == 0.5, ok.stderr
    endless = subprocess.Popen(["yes", ROWS.splitlines()[0]], stdout=subprocess.PIPE)
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


def test_select_holds_one_inference_file_at_a_time(tmp_path, monkeypatch):
    """Memory follows the largest file, not the sum: a file is released before the next one is read."""
    import gc
    import weakref

    from rewardkit.selection import checkpoints as selection
    from rewardkit.selection import inference_files

    for step in (1, 2, 3):
        rows = [{"id": i, "output": str(i % 2), "answer": "1"} for i in range(50)]
        (tmp_path / f"step_{step}.json").write_text(json.dumps({"step": step, "epoch": step, "records": rows}))
    alive: list[weakref.ref] = []
    most = []
    real = inference_files.load_inference

    def tracked(path, completion_key=None):
        gc.collect()
        most.append(sum(ref() is not None for ref in alive))  # files still held when the next one is read
        loaded = real(path, completion_key)
        alive.append(weakref.ref(loaded))
        return loaded

    monkeypatch.setattr(selection, "load_inference", tracked)
    result = selection.select(tmp_path, SPEC_DICT)
    assert [c.step for c in result.checkpoints] == [1, 2, 3] and result.checkpoints[0].corpus == 0.5
    assert max(most) == 0
    result = selection.select(tmp_path, SPEC_DICT, intersection=True)  # reads twice, still one at a time
    assert [c.corpus for c in result.checkpoints] == [0.5] * 3 and max(most) == 0


SPEC_DICT = {"rewards": {"em": {"use": "exact_match", "reference": "answer"}}}


# --- 4. records from disk: step files ----------------------------------------------------------------------------
def _step_file(folder: Path, name: str, step: object = 1, epoch: object = 1.0) -> None:
    folder.mkdir(exist_ok=True)
    record = '{"id": 1, "output": "1", "answer": "1"}'
    (folder / name).write_text(f'{{"step": {json.dumps(step)}, "epoch": {epoch}, "records": [{record}]}}')


@pytest.mark.parametrize("epoch", ["NaN", "Infinity", "-Infinity", "1e400", "-1"])
def test_step_file_epoch_must_be_finite_and_not_negative(tmp_path, epoch):
    from rewardkit.core.errors import DataError
    from rewardkit.selection.inference_files import load_inference

    _step_file(tmp_path, "step_1.json", epoch=epoch)
    with pytest.raises(DataError, match="step_1.json: 'epoch' must be a finite number >= 0"):
        load_inference(tmp_path / "step_1.json")


def test_select_json_never_prints_a_bare_nan(scoring):
    _step_file(scoring / "inf", "step_1.json", epoch="NaN")
    proc = run("select", "inf", "--spec", "spec.yaml", "--json", cwd=scoring)
    assert proc.returncode == 2 and "'epoch' must be a finite number >= 0" in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_two_files_of_one_step_are_refused(tmp_path):
    from rewardkit.core.errors import DataError
    from rewardkit.selection.inference_files import find_inference_files, step_files

    for name in ("step_1.json", "step_01.json", "step_001.json"):
        _step_file(tmp_path, name)
    for call in (
        lambda: find_inference_files(tmp_path),
        lambda: step_files(tmp_path),
        lambda: find_inference_files(tmp_path, ["step_1", "step_01"]),
    ):
        with pytest.raises(DataError, match=r"step_0.*\.json and .*step_1.json are all step 1. Hint: keep one"):
            call()
    for name in ("step_01.json", "step_001.json"):
        (tmp_path / name).unlink()
    assert list(step_files(tmp_path)) == [1]


def test_step_in_the_file_must_match_its_name(tmp_path):
    from rewardkit.core.errors import DataError
    from rewardkit.selection.inference_files import load_inference

    _step_file(tmp_path, "step_5.json", step=10)
    with pytest.raises(DataError, match="step_5.json: the file says step 10 but its name says step 5. Hint:"):
        load_inference(tmp_path / "step_5.json")
    _step_file(tmp_path, "step_5.json", step=5)
    assert load_inference(tmp_path / "step_5.json").step == 5


# --- 2 and 4. the stage record: absolute paths, validated like a config -------------------------------------------
def test_a_run_folder_does_not_depend_on_the_training_directory(tiny_lm_dir, tmp_path, monkeypatch):
    """`model: lmrel` (relative) trained in one directory; `--from-run` read from another directory that has its
    own `lmrel` folder still finds the base model the adapter was trained on."""
    from rewardkit.generation import resolve_run
    from rewardkit.train import run as train

    workdir, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    workdir.mkdir()
    (elsewhere / "lmrel").mkdir(parents=True)  # a same-named folder that must not be taken as the base model
    shutil.copytree(tiny_lm_dir, workdir / "lmrel")
    (workdir / "train.jsonl").write_text(
        "".join(json.dumps({"prompt": f"q{i}", "completion": "a"}) + "\n" for i in range(4))
    )
    monkeypatch.chdir(workdir)
    config = {
        "stage": "sft",
        "model": "lmrel",
        "output_dir": "run",
        "dataset": {"path": "train.jsonl"},
        "peft": {"r": 2, "dropout": 0.0},
        "trainer": {
            "max_steps": 1,
            "per_device_train_batch_size": 4,
            "max_length": 32,
            "disable_tqdm": True,
            "activation_checkpointing": False,
            "save_strategy": "no",
        },
    }
    train(config)
    record = json.loads((workdir / "run" / "rewardkit_stage.json").read_text())
    assert record["base_model"] == str(workdir / "lmrel")
    assert record["config"]["model"] == str(workdir / "lmrel")
    assert record["config"]["dataset"]["path"] == str(workdir / "train.jsonl")
    assert record["output_dir"] == str(workdir / "run") and record["working_dir"] == str(workdir)
    assert record["model"] == str(workdir / "run" / "merged")  # what a later `@sft` loads
    monkeypatch.chdir(elsewhere)
    settings = resolve_run(workdir / "run")
    assert settings.model == str(workdir / "lmrel") and settings.adapter == str(workdir / "run" / "final")


def test_a_pipeline_summary_records_absolute_folders(tiny_lm_dir, tmp_path, monkeypatch):
    """summary.json (what `--from-run <pipeline root>` reads first) holds absolute folders, like the stage records:
    read from another directory, its last stage is still the one that trained."""
    from rewardkit.generation import resolve_run
    from rewardkit.train import run as train

    workdir, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (elsewhere / "run" / "b").mkdir(parents=True)  # same-named relative folders where the summary is read
    shutil.copytree(tiny_lm_dir, workdir / "lmrel")
    (workdir / "train.jsonl").write_text(
        "".join(json.dumps({"prompt": f"q{i}", "completion": "a"}) + "\n" for i in range(4))
    )
    monkeypatch.chdir(workdir)
    trainer = {
        "max_steps": 1,
        "per_device_train_batch_size": 4,
        "max_length": 32,
        "disable_tqdm": True,
        "activation_checkpointing": False,
        "save_strategy": "no",
    }
    stage = {"stage": "sft", "dataset": {"path": "train.jsonl"}, "peft": {"r": 2, "dropout": 0.0}, "trainer": trainer}
    train(
        {
            "output_dir": "run",
            "pipeline": [{**stage, "name": "a", "model": "lmrel"}, {**stage, "name": "b", "model": "@a"}],
        }
    )
    summary = json.loads((workdir / "run" / "summary.json").read_text())
    assert [s["output_dir"] for s in summary] == [str(workdir / "run" / "a"), str(workdir / "run" / "b")]
    assert summary[1]["model"] == str(workdir / "run" / "b" / "merged")
    monkeypatch.chdir(elsewhere)
    assert resolve_run(workdir / "run").run_dir == str(workdir / "run" / "b")


def _stage_folder(tmp_path: Path, **dataset) -> Path:
    stage = tmp_path / "run"
    (stage / "final").mkdir(parents=True)
    (stage / "final" / "adapter_config.json").write_text("{}")
    config = {"stage": "sft", "model": "/models/base", "dataset": {"path": "x.jsonl", **dataset}}
    (stage / "rewardkit_stage.json").write_text(
        json.dumps({"name": "sft", "base_model": "/models/base", "config": config})
    )
    return stage


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"chat": "false"}, r"config.dataset.chat: Input should be a valid boolean"),
        ({"columns": ["ab"]}, r"config.dataset.columns: Input should be a valid dictionary"),
        ({"columns": 5}, r"config.dataset.columns: Input should be a valid dictionary"),
        ({"system_prompt": 7}, r"config.dataset.system_prompt: Input should be a valid string"),
    ],
    ids=["chat-as-text", "columns-as-list", "columns-as-number", "system-prompt-number"],
)
def test_a_malformed_stage_record_is_one_error(tmp_path, change, expected):
    from rewardkit.core.errors import ConfigError
    from rewardkit.generation import resolve_run

    stage = _stage_folder(tmp_path, **change)
    with pytest.raises(ConfigError, match=f"rewardkit_stage.json: {expected}"):
        resolve_run(stage)


def test_a_stage_record_whose_dataset_is_text_is_one_cli_line(tmp_path):
    stage = _stage_folder(tmp_path)
    record = json.loads((stage / "rewardkit_stage.json").read_text())
    record["config"]["dataset"] = "x"
    (stage / "rewardkit_stage.json").write_text(json.dumps(record))
    (tmp_path / "rows.jsonl").write_text('{"prompt": "p"}\n')
    proc = run(
        "generate", "--from-run", stage, "-i", tmp_path / "rows.jsonl", "-o", tmp_path / "out.jsonl", timeout=120
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "rewardkit_stage.json: config.dataset: Input should be" in proc.stderr


def test_a_summary_stage_name_cannot_leave_the_run(tmp_path):
    from rewardkit.core.errors import ConfigError
    from rewardkit.generation import resolve_run

    _stage_folder(tmp_path / "outside_run")  # a real stage record outside the pipeline's folder
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "summary.json").write_text(json.dumps([{"name": "../outside_run/run"}]))
    with pytest.raises(ConfigError, match="summary.json stage name '../outside_run/run' escapes"):
        resolve_run(pipe)


# --- 5. chat completions of other shapes -------------------------------------------------------------------------
def _assistant(content: object) -> list[dict]:
    return [{"role": "assistant", "content": content}]


@pytest.mark.parametrize(
    "content, text",
    [
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "ab"),  # TRL / OpenAI chat
        ([{"type": "image"}, {"type": "text", "text": "a"}], "a"),  # TRL multimodal
        ([{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "a"}], "a"),  # OpenAI
        ([{"type": "output_text", "text": "a"}], "a"),  # OpenAI Responses
        ([{"type": "refusal", "refusal": "no"}], ""),
    ],
    ids=["text-parts", "trl-image", "openai-image-url", "responses-output-text", "refusal"],
)
def test_accepted_content_parts(content, text):
    from rewardkit.rewards.inputs import completion_text

    assert completion_text(_assistant(content), 0) == text


@pytest.mark.parametrize(
    "content, expected",
    [
        ([{"type": "text", "text": None}], "a text part's 'text' must be a string, got NoneType"),
        ([{"type": "text", "text": 5}], "a text part's 'text' must be a string, got int"),
        (["hi"], "a part must be an object, got str 'hi'"),
        ([{"text": "hi"}], "a part without 'type'"),
        ([{"type": "tool_result", "text": "x"}], "a part of type 'tool_result' is not a text part"),
    ],
    ids=["text-null", "text-number", "bare-string", "no-type", "unknown-type"],
)
def test_other_content_parts_are_refused_in_one_line(tmp_path, content, expected):
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "chat.jsonl").write_text(json.dumps({"completion": _assistant(content), "answer": "1"}) + "\n")
    proc = run("score", "spec.yaml", "-i", "chat.jsonl", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"completions[0].content[0]: {expected}. Hint:" in proc.stderr


# --- 7. smaller ones ---------------------------------------------------------------------------------------------
PIPELINE = {
    "pipeline": [
        {"stage": "sft", "model": "m", "dataset": {"path": "x.jsonl"}},
        {"stage": "sft", "name": "b", "model": "m", "dataset": {"path": "x.jsonl"}},
    ]
}


@pytest.mark.parametrize(
    "key, expected",
    [
        ("pipeline.--1.name", "no item named '--1'"),
        ("pipeline.².name", "no item named '²'"),
        ("pipeline.١.name", "no item named '١'"),  # an Arabic-Indic digit one: not index 1
        ("pipeline.99999999999999999999.name", "index 99999999999999999999 is out of range (2 items)"),
    ],
    ids=["double-minus", "superscript-two", "arabic-indic-one", "huge"],
)
def test_set_indices_are_ascii_digits(key, expected):
    from rewardkit.core.errors import ConfigError
    from rewardkit.train.config import apply_overrides

    with pytest.raises(ConfigError, match=re.escape(f"--set {key.rsplit('.', 1)[0]}: {expected}")):
        apply_overrides(PIPELINE, [f"{key}=x"])
    assert apply_overrides(PIPELINE, ["pipeline.-1.name=x"])["pipeline"][1]["name"] == "x"


@pytest.mark.parametrize(
    "into, expected",
    [
        ("id", "--into 'id' would overwrite the row's id"),
        ("id.x", "--into 'id.x' would overwrite the row's id"),
        ("input", "--into 'input' would overwrite the prompt's source field 'input.question'"),
        ("input.question", "--into 'input.question' would overwrite the prompt's source field 'input.question'"),
        (
            "output. answer",
            "--into 'output. answer': the key ' answer' has spaces around it. Hint: write --into 'output.answer'",
        ),
    ],
    ids=["id", "inside-id", "input", "prompt-field", "spaces"],
)
def test_generate_into_keeps_the_rows_identity(tmp_path, into, expected):
    (tmp_path / "test.json").write_text('[{"id": "1", "input": {"question": "q"}}]')
    proc = run(
        "generate",
        "no_such_model",
        "-i",
        "test.json",
        "-o",
        "out.json",
        "--column",
        "input.question=prompt",
        "--into",
        into,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    # Asked for: the identity check lets it through (the missing model is the next error).
    if into in ("id", "input", "input.question"):
        proc = run(
            "generate",
            "no_such_model",
            "-i",
            "test.json",
            "-o",
            "out.json",
            "--column",
            "input.question=prompt",
            "--into",
            into,
            "--into-overwrite",
            cwd=tmp_path,
        )
        assert proc.returncode == 2 and "neither a local folder nor in the Hugging Face cache" in proc.stderr


def test_into_identity_rule_leaves_other_keys_alone():
    from rewardkit.generation import check_into_keeps_identity, parse_into

    for into in ("completion", "output.answer", "input.answer", "identity"):
        check_into_keeps_identity(
            parse_into(into), {"input.question": "prompt", "output.answer": "completion"}, "prompt"
        )


@pytest.mark.parametrize("first, second", [("x-y", "x_y"), ("x_y", "x--y"), ("x-y", "x-_y")])
def test_plugin_names_that_pip_normalizes_alike_are_one_plugin(tmp_path, first, second):
    from rewardkit.cli.scaffold import new_plugin
    from rewardkit.core.errors import ConfigError

    made = new_plugin(first, tmp_path)
    assert made.root.name == "rewardkit-x-y" and made.module == "rewardkit_x_y"
    with pytest.raises(ConfigError, match="rewardkit-x-y already exists and is not empty"):
        new_plugin(second, tmp_path)
    made.root.rename(tmp_path / "rewardkit-x_y")  # a folder spelled the other way (by hand, an older rewardkit)
    with pytest.raises(ConfigError, match="rewardkit-x_y is the same plugin as rewardkit-x-y"):
        new_plugin(second, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rewardkit-x_y"]


def test_description_under_a_c_locale_names_the_locale(tmp_path):
    env = {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
    proc = run("plugin", "new", "demo", "--dir", tmp_path, "--description", "한국어 설명", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "the command runs under a non-UTF-8 locale (LC_ALL=C" in proc.stderr and "PYTHONUTF8=1" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    proc = run("plugin", "new", "demo", "--dir", tmp_path, "--description", "한국어 설명")  # a UTF-8 locale
    assert proc.returncode == 0 and "한국어 설명" in (tmp_path / "rewardkit-demo" / "pyproject.toml").read_text()


def _two_checkpoints(folder: Path) -> Path:
    for step, output in ((1, "0"), (2, "1")):
        _step_file(folder, f"step_{step}.json", step=step)
        data = json.loads((folder / f"step_{step}.json").read_text())
        data["records"][0]["output"] = output
        (folder / f"step_{step}.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize("name, magic", [("p.svg", b"<?xml"), ("p.pdf", b"%PDF"), ("p.PNG", b"\x89PNG")])
def test_select_plot_follows_the_suffix(tmp_path, name, magic):
    from rewardkit.selection import checkpoints as selection
    from rewardkit.selection.plot import write_plot

    result = selection.select(_two_checkpoints(tmp_path / "inf"), SPEC_DICT)
    write_plot(result, tmp_path / name)
    assert (tmp_path / name).read_bytes().startswith(magic)


@pytest.mark.parametrize("name", ["p.txt", "p", "p.json"])
def test_select_plot_with_an_unknown_suffix_is_refused_before_scoring(scoring, name):
    _two_checkpoints(scoring / "inf")
    proc = run("select", "inf", "--spec", "spec.yaml", "--plot", name, cwd=scoring)
    assert proc.returncode == 2 and "names no image format written here. Hint: end the name with .png" in proc.stderr
    assert proc.stdout == "" and not (scoring / name).exists()


@pytest.mark.parametrize("entry", ["symlink", "file"])
def test_demo_output_with_a_linked_stage_folder_is_refused(tmp_path, entry):
    from rewardkit.cli.demo import prepare_output
    from rewardkit.core.errors import ConfigError
    from rewardkit.core.fileio import OUTPUT_MARKER as MARKER

    out, elsewhere = tmp_path / "demo", tmp_path / "precious"
    (elsewhere / "keep").mkdir(parents=True)
    (out / "grpo").mkdir(parents=True)
    (out / MARKER).write_text("written by `rewardkit demo`\n")
    if entry == "symlink":
        (out / "sft").symlink_to(elsewhere, target_is_directory=True)
    else:
        (out / "sft").write_text("not a folder")
    expected = f"is a symlink to {elsewhere}" if entry == "symlink" else "is not a folder"
    with pytest.raises(ConfigError, match=f"sft {expected}, which the demo did not write"):
        prepare_output(out)
    assert (elsewhere / "keep").is_dir() and (out / "grpo").is_dir()  # nothing emptied
    (out / "sft").unlink()
    prepare_output(out)
    assert not (out / "grpo").exists() and (out / MARKER).is_file()


def test_a_pickled_adapter_with_code_is_refused_as_unsafe(tiny_lm_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rewardkit.core.errors import ConfigError
    from rewardkit.generation import load_model_for_inference

    adapter = tmp_path / "adapter"
    lora = LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), lora).save_pretrained(adapter)
    (adapter / "adapter_model.safetensors").unlink()
    torch.save({"weight": _RunsCode(str(tmp_path / "ran"))}, adapter / "adapter_model.bin")
    with pytest.raises(
        ConfigError,
        match=r"adapter '.*adapter': a pickled weights file \(.bin\) could not be loaded "
        r"safely: .*unsupported GLOBAL posix.system.*Hint: use weights saved as "
        r".safetensors",
    ):
        load_model_for_inference(str(tiny_lm_dir), adapter, device="cpu")
    assert not (tmp_path / "ran").exists()


class _RunsCode:
    """Unpickling this runs a shell command (what a crafted adapter_model.bin does)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.path)}",))
