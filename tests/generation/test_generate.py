"""`rewardkit generate`: test set → submission file with a tiny model (CPU, offline), from a model or a run folder."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardkit.core.errors import ConfigError, DataError
from tests.conftest import run_cli, run_cli_here

SYSTEM = "You are a careful Korean grammar teacher. Read the question and answer with the correct sentence."
QUESTIONS = [
    "Pick: a or b?",
    "Fix this sentence: I has a cat.",
    "Which one is right, x or y? Explain why.",
    "Q",
    "Correct the spelling: recieve",
    "Say 7",
    "What is the right form of 'go' here: He ___ home.",
    "b?",
    "Choose the better option and give one reason for the choice you make here.",
]
NEW = 6  # new tokens: enough to tell outputs apart, short enough for CPU


def _competition(n: int = len(QUESTIONS)) -> list[dict]:
    """Items in the 2025 Korean grammar-QA competition's shape (the output object varies as in real files)."""
    rows = []
    for i in range(n):
        row = {
            "id": str(100 + i),
            "input": {"question_type": "선택형" if i % 2 else "교정형", "question": QUESTIONS[i % len(QUESTIONS)]},
        }
        if i % 3 == 0:
            row["output"] = {}
        elif i % 3 == 1:
            row["output"] = {"answer": "old answer", "note": "kept"}
        rows.append(row)  # i % 3 == 2: no output object at all
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines()]
    return json.loads(text)


def _drop(row: dict, dotted: str) -> dict:
    """The row without the value at the dotted path (empty objects created for it removed too)."""
    out = copy.deepcopy(row)
    parts = dotted.split(".")
    nodes = [out]
    for part in parts[:-1]:
        nodes.append(nodes[-1][part])
    del nodes[-1][parts[-1]]
    return out


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory) -> Path:
    """conftest's tiny Qwen2 + char tokenizer, initialised with a wider spread (initializer_range 0.2): with the
    default init its greedy completion is "\\n\\n..." for every prompt, which would make output comparisons vacuous."""
    from rewardkit.core.tiny import save_tiny_causal_lm

    return save_tiny_causal_lm(tmp_path_factory.mktemp("gen_lm"), initializer_range=0.2)


@pytest.fixture(scope="module")
def loaded(lm_dir):
    from rewardkit.generation import load_model_for_inference

    return load_model_for_inference(lm_dir, device="cpu")


def _one_at_a_time(model, tok, prompts: list, max_new_tokens: int = NEW) -> list[str]:
    """Reference: one plain greedy `model.generate` per prompt (chat template for message prompts)."""
    import torch

    texts = []
    for prompt in prompts:
        if isinstance(prompt, str):
            batch = tok(prompt, return_tensors="pt")
        else:
            text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            batch = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        texts.append(tok.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True))
    return texts


# --- rows in, rows out -----------------------------------------------------------------------------------------
def test_rows_equal_input_plus_completion_at_into(lm_dir, tmp_path):
    from rewardkit.generation import generate_file

    rows = [{"prompt": q, "meta": {"k": i}, "n": i, "tags": ["a", i]} for i, q in enumerate(QUESTIONS[:5])]
    src = _write(tmp_path / "in.jsonl", rows)
    result = generate_file(
        str(lm_dir), src, tmp_path / "out.jsonl", into="pred.deep.text", device="cpu", max_new_tokens=NEW, batch_size=2
    )
    out = _read(tmp_path / "out.jsonl")
    assert [_drop(r, "pred.deep.text") for r in out] == [dict(r, pred={"deep": {}}) for r in rows]
    texts = [r["pred"]["deep"]["text"] for r in out]
    assert all(isinstance(t, str) for t in texts) and len(set(texts)) > 1
    assert result.rows == 5 and result.empty == sum(not t for t in texts) and result.adapter is None
    assert _read(src) == rows  # the input file is untouched

    # Default: a `completion` column, the same texts (greedy, deterministic).
    generate_file(str(lm_dir), src, tmp_path / "plain.jsonl", device="cpu", max_new_tokens=NEW)
    plain = _read(tmp_path / "plain.jsonl")
    assert [_drop(r, "completion") for r in plain] == rows
    assert [r["completion"] for r in plain] == texts


def test_competition_items_into_output_answer(lm_dir, loaded, tmp_path):
    from rewardkit.generation import generate_file

    rows = _competition()
    rows[4]["output"] = None  # null counts as absent
    src = _write(tmp_path / "test.json", rows)
    generate_file(
        str(lm_dir),
        src,
        tmp_path / "submission.json",
        into="output.answer",
        device="cpu",
        columns={"input.question": "prompt"},
        system_prompt=SYSTEM,
        max_new_tokens=NEW,
        batch_size=4,
    )
    out = _read(tmp_path / "submission.json")
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    for before, after in zip(rows, out):
        assert after["input"] == before["input"] and set(after) == {"id", "input", "output"}
        others = {k: v for k, v in (before.get("output") or {}).items() if k != "answer"}
        assert {k: v for k, v in after["output"].items() if k != "answer"} == others  # "note" kept
        assert isinstance(after["output"]["answer"], str)
    # The answers are the model's greedy completions of the system prompt + question (not the old answer).
    prompts = [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": r["input"]["question"]}] for r in rows
    ]
    assert [r["output"]["answer"] for r in out] == _one_at_a_time(*loaded, prompts)


def test_json_and_jsonl_output_hold_the_same_rows(lm_dir, tmp_path):
    from rewardkit.generation import generate_file

    rows = _competition(4)
    common = dict(
        device="cpu", columns={"input.question": "prompt"}, chat=True, max_new_tokens=NEW, into="output.answer"
    )
    generate_file(str(lm_dir), _write(tmp_path / "in.json", rows), tmp_path / "a.json", **common)
    generate_file(str(lm_dir), _write(tmp_path / "in.jsonl", rows), tmp_path / "b.jsonl", **common)
    text_json, text_jsonl = (tmp_path / "a.json").read_text(), (tmp_path / "b.jsonl").read_text()
    assert isinstance(json.loads(text_json), list)
    assert len(text_jsonl.splitlines()) == 4 and all(json.loads(x)["id"] for x in text_jsonl.splitlines())
    assert json.loads(text_json) == [json.loads(x) for x in text_jsonl.splitlines()]
    assert "선택형" in text_json and "선택형" in text_jsonl  # UTF-8, not \u escapes


@pytest.mark.parametrize("kind", ["chat", "string"])
def test_outputs_equal_one_at_a_time_generate(loaded, tmp_path, kind):
    """Batched (4 per batch, padded), prefix-shared generation gives exactly the texts of one plain greedy
    `model.generate` per row."""
    from rewardkit.engines.hf import shared_prefix_length
    from rewardkit.generation import build_prompts, generate_file

    model, tok = loaded
    instruction = "Instruction: answer in one short sentence, then stop. Question: "
    rows = [{"id": i, "q": instruction + q} for i, q in enumerate(QUESTIONS)]
    options = dict(columns={"q": "prompt"}, system_prompt=SYSTEM if kind == "chat" else None)
    prompts = build_prompts(rows, **options)
    texts = [
        tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) if kind == "chat" else p for p in prompts
    ]
    ids = tok(texts, add_special_tokens=kind == "string")["input_ids"]
    assert shared_prefix_length(ids) >= 8 and len({len(x) for x in ids}) > 3  # prefix sharing and padding happen
    generate_file(
        model,
        _write(tmp_path / "in.jsonl", rows),
        tmp_path / "out.jsonl",
        tokenizer=tok,
        max_new_tokens=NEW,
        batch_size=4,
        **options,
    )
    got = [r["completion"] for r in _read(tmp_path / "out.jsonl")]
    assert got == _one_at_a_time(model, tok, prompts)
    assert len(set(got)) > 1


def test_adapter_is_applied(lm_dir, loaded, tmp_path):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from rewardkit.generation import generate_file, load_model_for_inference

    torch.manual_seed(1)
    config = LoraConfig(
        r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
    )
    get_peft_model(AutoModelForCausalLM.from_pretrained(lm_dir), config).save_pretrained(tmp_path / "adapter")
    rows = [{"prompt": q} for q in QUESTIONS]
    src = _write(tmp_path / "in.jsonl", rows)
    generate_file(
        str(lm_dir),
        src,
        tmp_path / "out.jsonl",
        adapter=tmp_path / "adapter",
        device="cpu",
        max_new_tokens=NEW,
        chat=True,
    )
    got = [r["completion"] for r in _read(tmp_path / "out.jsonl")]
    prompts = [[{"role": "user", "content": q}] for q in QUESTIONS]
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(lm_dir), tmp_path / "adapter")
    reference.eval()
    assert got == _one_at_a_time(reference, loaded[1], prompts)
    assert got != _one_at_a_time(*loaded, prompts)  # the adapter changed the outputs
    model, _ = load_model_for_inference(lm_dir, tmp_path / "adapter", device="cpu")
    assert not model.training and type(model).__name__ == "PeftModelForCausalLM"


def test_progress_counts_every_row(loaded):
    from rewardkit.callbacks.inference import generate_texts

    seen: list[int] = []
    generate_texts(*loaded, QUESTIONS, batch_size=4, max_new_tokens=2, progress=seen.append)
    assert seen == [4, 4, 1]


def test_row_mapping_matches_training_map_columns():
    """The per-row getter gives the same prompt as the training path's Dataset.flatten() mapping."""
    from rewardkit.generation import build_prompts
    from rewardkit.train.config import DatasetSpec
    from rewardkit.train.data import _chat, _from_rows, map_columns

    rows = _competition(6)
    for row in rows:
        row["output"] = {"answer": "x"}
        row["prompt"] = "replaced by the mapping"
    columns = {"input.question": "prompt", "output.answer": "completion"}
    spec = DatasetSpec(path="x.jsonl", columns=columns, system_prompt=SYSTEM)
    trained = _chat(map_columns(_from_rows(rows, "rows"), columns, "rows"), spec)["prompt"]
    assert build_prompts(rows, columns, system_prompt=SYSTEM) == trained


# --- --from-run ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sft_run(lm_dir, tmp_path_factory):
    """A real `rewardkit train` SFT stage: competition items mapped with dotted columns, a system prompt, LoRA,
    lora_save at every step."""
    from rewardkit.train import run

    root = tmp_path_factory.mktemp("gen_run")
    train = [
        {
            "id": str(i),
            "input": {"question_type": "선택형", "question": f"Fix: {w}"},
            "output": {"answer": f'"{w}" is right.'},
        }
        for i, w in enumerate(["cat", "dog", "sun", "sky"] * 2)
    ]
    _write(root / "train.jsonl", train)
    config = {
        "stage": "sft",
        "model": str(lm_dir),
        "output_dir": str(root / "run"),
        "dataset": {
            "path": str(root / "train.jsonl"),
            "system_prompt": SYSTEM,
            "columns": {"input.question": "prompt", "output.answer": "completion"},
        },
        "peft": {"r": 4, "dropout": 0.0},
        "trainer": {
            "max_steps": 2,
            "per_device_train_batch_size": 4,
            "learning_rate": 0.1,
            "max_length": 256,
            "save_strategy": "steps",
            "save_steps": 1,
            "logging_steps": 1,
            "disable_tqdm": True,
            "activation_checkpointing": False,
            "seed": 0,
        },
        "callbacks": [{"name": "lora_save"}],
    }
    [result] = run(config)
    assert result.steps == 2
    return root / "run"


def test_from_run_uses_newest_adapter_then_best(sft_run, lm_dir, tmp_path):
    from rewardkit.generation import generate_file, resolve_run

    record = json.loads((sft_run / "rewardkit_stage.json").read_text())
    assert record["base_model"] == str(lm_dir)
    settings = resolve_run(sft_run)
    assert (settings.model, settings.adapter) == (str(lm_dir), str(sft_run / "adapters" / "step_2"))
    assert settings.columns == {"input.question": "prompt", "output.answer": "completion"}
    assert settings.system_prompt == SYSTEM

    rows = _competition()
    src = _write(tmp_path / "test.json", rows)
    options = dict(into="output.answer", max_new_tokens=NEW, device="cpu")
    result = generate_file(None, src, tmp_path / "from_run.json", from_run=sft_run, **options)
    assert result.adapter == str(sft_run / "adapters" / "step_2") and result.run["stage"] == "sft"
    explicit = dict(columns={"input.question": "prompt"}, system_prompt=SYSTEM, **options)
    generate_file(str(lm_dir), src, tmp_path / "explicit.json", adapter=sft_run / "adapters/step_2", **explicit)
    assert _read(tmp_path / "from_run.json") == _read(tmp_path / "explicit.json")
    generate_file(str(lm_dir), src, tmp_path / "base.json", **explicit)
    generate_file(
        str(lm_dir),
        src,
        tmp_path / "no_system.json",
        adapter=sft_run / "adapters/step_2",
        **dict(explicit, system_prompt=None, chat=True),
    )
    answers = {
        name: [r["output"]["answer"] for r in _read(tmp_path / f"{name}.json")]
        for name in ("from_run", "base", "no_system")
    }
    assert answers["from_run"] != answers["base"]  # the trained adapter is applied
    assert answers["from_run"] != answers["no_system"]  # the run's system prompt is applied

    # best/ (what best_checkpoint copies) wins over the newest adapters/step_N.
    shutil.copytree(sft_run / "adapters" / "step_1", sft_run / "best")
    try:
        assert resolve_run(sft_run).adapter == str(sft_run / "best")
        # The command an entrant types; the file equals the Python API's with the same adapter.
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "rewardkit",
                "generate",
                "--from-run",
                str(sft_run),
                "--input",
                str(src),
                "--into",
                "output.answer",
                "--output",
                str(tmp_path / "submission.json"),
                "--max-new-tokens",
                str(NEW),
                "--device",
                "cpu",
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            env=_env(),
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"Wrote {len(rows)} rows" in proc.stdout and "best" in proc.stdout
        generate_file(str(lm_dir), src, tmp_path / "best.json", adapter=sft_run / "best", **explicit)
        assert _read(tmp_path / "submission.json") == _read(tmp_path / "best.json")
        assert _read(tmp_path / "submission.json") != _read(tmp_path / "from_run.json")  # step_1 != step_2
    finally:
        shutil.rmtree(sft_run / "best")


def test_from_run_record_without_base_model_and_with_stage_reference(lm_dir, tmp_path):
    """A pipeline stage's saved `model: "@sft"`: base_model answers; older records fall back to the adapter's
    base_model_name_or_path. A pipeline root resolves to its last stage."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rewardkit.generation import resolve_run

    stage = tmp_path / "pipe" / "pref"
    lora = LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")
    get_peft_model(AutoModelForCausalLM.from_pretrained(lm_dir), lora).save_pretrained(stage / "final")
    config = {"stage": "dpo", "name": "pref", "model": "@sft", "dataset": {"path": "x.jsonl"}, "callbacks": []}
    record = {
        "name": "pref",
        "stage": "dpo",
        "output_dir": str(stage),
        "model": str(stage / "merged"),
        "base_model": "/somewhere/sft/merged",
        "config": config,
    }
    (stage / "rewardkit_stage.json").write_text(json.dumps(record))
    (tmp_path / "pipe" / "summary.json").write_text(json.dumps([{"name": "sft"}, record]))
    settings = resolve_run(tmp_path / "pipe")
    assert (settings.model, settings.adapter) == ("/somewhere/sft/merged", str(stage / "final"))
    del record["base_model"]
    (stage / "rewardkit_stage.json").write_text(json.dumps(record))
    assert resolve_run(stage).model == str(lm_dir)  # PEFT recorded the path the base was loaded from
    record["stage"] = config["stage"] = "rm"
    (stage / "rewardkit_stage.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="reward-model stage"):
        resolve_run(stage)


# --- errors and partial files ----------------------------------------------------------------------------------
def _env(**changes) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "80", **changes}
    return {k: v for k, v in env.items() if v is not None}


@pytest.fixture(scope="module")
def error_files(tmp_path_factory, lm_dir):
    d = tmp_path_factory.mktemp("gen_errors")
    _write(d / "ok.json", _competition(3))
    (d / "broken.json").write_text('[{"id": "1", "input": {"question": "q"}}, {"id": ', encoding="utf-8")
    (d / "object.json").write_text('{"id": "1"}', encoding="utf-8")
    conflict = _competition(3)
    conflict[1]["output"] = "a string, not an object"
    _write(d / "conflict.json", conflict)
    (d / "not_adapter").mkdir()
    (d / "not_adapter" / "weights.bin").write_text("x")
    return d


ERRORS = [  # (arguments, expected text in the one-line error); {d} = data folder, {m} = tiny model
    ("{m} --input {d}/broken.json --column input.question=prompt", "invalid JSON"),
    ("{m} --input {d}/object.json", "expected a JSON list of objects"),
    ("{m} --input {d}/missing.json", "does not exist"),
    ("{m} --input {d}/ok.json", "has no 'prompt'"),
    ("{d}/no_model_here --input {d}/ok.json --column input.question=prompt", "model folder"),
    ("{m} --adapter {d}/not_adapter --input {d}/ok.json --column input.question=prompt", "no adapter_config.json"),
    (
        "{m} --input {d}/conflict.json --column input.question=prompt --into output.answer",
        "needs 'output' to be an object",
    ),
    ("{m} --input {d}/ok.json --column input.question=prompt --into output..answer", "dotted key"),
    ("{m} --from-run {d} --input {d}/ok.json", "exactly one of MODEL and --from-run"),
    ("--input {d}/ok.json", "exactly one of MODEL and --from-run"),
    ("--from-run {d} --input {d}/ok.json", "no rewardkit_stage.json"),
    ("{m} --input {d}/ok.json --column input.question", "expected SRC=DST"),
    ("{m} --input {d}/ok.json --column input.question=prompt --max-new-tokens 99999999999", "--max-new-tokens"),
]


@pytest.mark.parametrize("args, expected", ERRORS, ids=[e[1] for e in ERRORS])
def test_errors_are_one_line_and_exit_2(error_files, lm_dir, args, expected):
    out = error_files / "out.json"
    argv = args.format(d=error_files, m=lm_dir).split() + ["--output", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit", "generate", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], proc.stderr
    assert "Hint:" in lines[0] and not out.exists()


def test_uncached_hub_id_fails_fast_without_network(error_files):
    """Online mode (no HF_HUB_OFFLINE) and an unknown hub id: an error at once, not tens of seconds of retries."""
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rewardkit",
            "generate",
            "nobody-xyz/not-a-real-model-123",
            "--input",
            str(error_files / "ok.json"),
            "--column",
            "input.question=prompt",
            "--output",
            str(error_files / "out.json"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(HF_HUB_OFFLINE=None, TRANSFORMERS_OFFLINE=None, HF_ENDPOINT="http://127.0.0.1:9"),
    )
    elapsed = time.perf_counter() - started
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "nor in the Hugging Face cache" in proc.stderr and "Hint: pass a local folder" in proc.stderr
    assert elapsed < 20  # interpreter start-up included; the hub's back-off alone takes longer


def test_bad_output_suffix_and_columns_json():
    from rewardkit.generation import output_format, parse_columns

    with pytest.raises(ConfigError, match="unknown file type '.csv'"):
        output_format("out.csv")
    assert parse_columns(["a.b=prompt"], '{"x": "y"}') == {"x": "y", "a.b": "prompt"}
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_columns(None, "{x")


def test_output_is_not_left_partial_on_failure(loaded, tmp_path):
    from rewardkit.generation import generate_file

    model, tok = loaded
    out = tmp_path / "submission.json"
    out.write_text("previous submission\n", encoding="utf-8")
    src = _write(tmp_path / "in.jsonl", [{"prompt": q} for q in QUESTIONS])
    real, calls = model.generate, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first batch is done, the second fails
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    model.generate = failing
    try:
        with pytest.raises(KeyboardInterrupt):
            generate_file(model, src, out, tokenizer=tok, batch_size=4, max_new_tokens=NEW)
    finally:
        del model.generate
    assert len(calls) == 2
    assert out.read_text(encoding="utf-8") == "previous submission\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "submission.json"]  # no temp file left
    # An input error is found before the model runs and leaves the file alone too.
    with pytest.raises(DataError, match="has no 'question'"):
        generate_file(model, src, out, tokenizer=tok, prompt_column="question")
    nan = _write(tmp_path / "nan.jsonl", [{"prompt": "a"}, {"prompt": "b", "score": float("nan")}])
    with pytest.raises(DataError, match="row 1 holds NaN"):
        generate_file(model, nan, out, tokenizer=tok)
    assert out.read_text(encoding="utf-8") == "previous submission\n"


def test_failed_write_keeps_the_old_file(loaded, tmp_path, monkeypatch):
    """The file is replaced in one step (temp file + rename): a write that fails leaves the old file whole."""
    from rewardkit.generation import generate_file

    out = tmp_path / "submission.jsonl"
    out.write_text("previous submission\n", encoding="utf-8")
    src = _write(tmp_path / "in.jsonl", [{"prompt": q} for q in QUESTIONS[:3]])

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises((OSError, DataError)):
        generate_file(loaded[0], src, out, tokenizer=loaded[1], max_new_tokens=2)
    monkeypatch.undo()
    assert out.read_text(encoding="utf-8") == "previous submission\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "submission.jsonl"]


def test_unwritable_output_is_refused_before_the_model_loads(tmp_path):
    import os

    (tmp_path / "in.json").write_text('[{"id": 1, "prompt": "hi"}]', encoding="utf-8")
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    # The model does not exist: an error about the FIFO proves the output was checked first.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rewardkit",
            "generate",
            str(tmp_path / "no_model"),
            "--input",
            str(tmp_path / "in.json"),
            "--output",
            str(fifo),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "is a FIFO" in proc.stderr


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
    proc = run_cli(
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
        proc = run_cli(
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


def test_generation_of_an_empty_shard_needs_no_chat_template():
    from rewardkit.callbacks.inference import generate_texts

    assert generate_texts(object(), object(), []) == []  # a rank with no prompts never touches model or tokenizer


@pytest.fixture(scope="module")
def silent_lm(tmp_path_factory) -> Path:
    """A tiny model whose generation config forces end-of-turn at once: every completion is empty."""
    from transformers import AutoModelForCausalLM

    from rewardkit.core.tiny import make_tiny

    path = make_tiny(tmp_path_factory.mktemp("silent"), "lm", hidden_size=32)
    model = AutoModelForCausalLM.from_pretrained(path)
    model.generation_config.forced_eos_token_id = model.generation_config.eos_token_id
    model.generation_config.save_pretrained(path)
    return path


def _rows(path: Path, n: int = 3) -> Path:
    path.write_text("".join(json.dumps({"id": str(i), "prompt": f"{i}+1="}) + "\n" for i in range(n)))
    return path


def test_generate_warns_on_empty_completions(silent_lm, tmp_path):
    rows = _rows(tmp_path / "in.jsonl")
    base = [sys.executable, "-m", "rewardkit", "generate", str(silent_lm), "-i", str(rows), "--max-new-tokens", "1"]
    # --json in-process (a second process would spend most of its time importing torch), --fail-on-empty's exit 1
    # from a process of its own
    proc = run_cli_here(*base[3:], "-o", tmp_path / "out.jsonl", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["empty"] == 3
    assert "warning: 3 of 3 completions are empty or whitespace only" in proc.stderr
    proc = subprocess.run(
        [*base, "-o", str(tmp_path / "out2.jsonl"), "--fail-on-empty"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1 and "3 of 3 completions are empty" in proc.stderr
    assert len((tmp_path / "out2.jsonl").read_text().splitlines()) == 3  # still written, for inspection


def test_chat_template_in_config_and_for_generate(silent_lm, tmp_path):
    from rewardkit.generation import generate_file
    from rewardkit.train.config import load_stages

    template = tmp_path / "plain.jinja"
    template.write_text("{% for m in messages %}{{ m['content'] }}\n{% endfor %}")
    rows = tmp_path / "in.jsonl"
    rows.write_text(json.dumps({"prompt": [{"role": "user", "content": "hi"}]}) + "\n")
    result = generate_file(
        str(silent_lm), rows, tmp_path / "o.jsonl", chat_template=str(template), max_new_tokens=1, progress=False
    )
    assert result.rows == 1
    with pytest.raises(ConfigError, match="--chat-template: 'nope.jinja' is neither a file nor a template"):
        generate_file(str(silent_lm), rows, tmp_path / "o.jsonl", chat_template="nope.jinja")
    base = {"stage": "sft", "model": str(silent_lm), "dataset": {"generator": "arithmetic"}}
    [stage], _, _ = load_stages({**base, "tokenizer": {"chat_template": str(template)}})
    assert stage.chat_template == str(template) and stage.tokenizer is None
    with pytest.raises(ConfigError, match=r"tokenizer.chat_template: 'missing.jinja' is neither a file"):
        load_stages({**base, "tokenizer": {"chat_template": "missing.jinja"}})
