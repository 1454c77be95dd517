"""`rewardkit generate`: generate a test set with a trained model (or a run's best adapter) into a submission file.

    rewardkit generate --from-run runs/competition --input test.json --into output.answer --output submission.json

Generation is `checkpoint_inference`'s (`rewardkit.callbacks.inference.generate_texts`): greedy, batched, left
padded, chat-templated, the prompts' shared prefix encoded once. Prompts come from the input rows the way a
training stage's `dataset` section maps them (`columns` with dotted names, `chat`, `system_prompt`), so test
prompts look like the training prompts. Each output row is a copy of its input row with the completion written
at `into` (a dotted path; default `completion`). The output format follows the output suffix (.json: a JSON
list, .jsonl: one object per line) and the file is written atomically (never partially).

Example:
>>> from rewardkit.generation import generate_file
>>> result = generate_file("runs/sft/merged", "test.json", "submission.json", into="output.answer",
...                        columns={"input.question": "prompt"}, chat=True)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError

DEFAULT_INTO = "completion"
INPUT_SUFFIXES = (".json", ".jsonl")
DTYPES = ("auto", "float32", "bfloat16", "float16")
STAGE_FILE = "rewardkit_stage.json"  # written by rewardkit.train.pipeline.run_stage
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_STEP_DIR = re.compile(r"^(step|epoch)_(\d+)$")
_MISSING = object()


@dataclass
class GenerateResult:
    """What `generate_file` did: counts, the model it used and where the time went."""

    output: str
    rows: int
    empty: int  # rows whose completion is the empty string
    model: str
    adapter: str | None
    device: str
    dtype: str
    load_seconds: float
    generate_seconds: float
    seconds: float  # total, reading and writing included
    run: dict[str, Any] | None = None  # what --from-run chose (stage, folder), when used

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.generate_seconds if self.generate_seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- rows, prompt mapping and the --into path -----------------------------------------------------------------
def read_rows(path: str | Path) -> list[dict]:
    """Input rows: a .json list of objects or a .jsonl file (one object per line)."""
    from .fileio import read_json, read_jsonl

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise ConfigError(f"--input {str(path)!r}: unknown file type {suffix or '(no suffix)'!r}. Hint: use .json "
                          "(a list of objects) or .jsonl (one object per line).")
    if not path.is_file():
        raise DataError(f"--input {str(path)!r} does not exist{' (it is a folder)' if path.is_dir() else ''}. "
                        "Hint: check the path (relative paths start at the current directory).")
    rows = read_jsonl(path) if suffix == ".jsonl" else read_json(path)
    if not isinstance(rows, list) or not rows:
        got = "an empty list" if rows == [] else type(rows).__name__
        raise DataError(f"{path}: expected a non-empty list of objects, got {got}. Hint: a JSON list "
                        '[{"id": ..., "input": {...}}, ...] or JSONL with one object per line.')
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"{path}: item {i} is {type(row).__name__}, not an object. Hint: every item must "
                            'be a {"key": value} object.')
        try:  # found now rather than when writing, after the whole generation
            json.dumps(row, allow_nan=False)
        except ValueError:
            raise DataError(f"{path}: {_row_name(row, i)} holds NaN or Infinity, which the output JSON cannot "
                            "hold. Hint: replace it with null or a number.") from None
    return rows


def parse_columns(items: list[str] | None = None, json_text: str | None = None) -> dict[str, str]:
    """`--column SRC=DST` items and/or a `--columns-json` object (JSON text or a .json file) as {src: dst}."""
    columns: dict[str, str] = {}
    if json_text:
        text = json_text
        if not json_text.lstrip().startswith("{") and Path(json_text).is_file():
            text = Path(json_text).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--columns-json: not valid JSON ({exc.msg}). Hint: e.g. "
                              "'{\"input.question\": \"prompt\"}', or the path of a .json file.") from None
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ConfigError("--columns-json: expected an object of strings {name in the file: name used}. "
                              "Hint: e.g. '{\"input.question\": \"prompt\"}'.")
        columns.update(data)
    for item in items or []:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ConfigError(f"--column {item!r}: expected SRC=DST. Hint: --column input.question=prompt.")
        columns[src.strip()] = dst.strip()
    return columns


def get_field(row: dict, name: str) -> Any:
    """`row[name]`, else the dotted path `a.b.c` through nested objects; `_MISSING` when absent.

    The per-row form of `rewardkit.train.data.map_columns` (which flattens a `datasets.Dataset`): a literal key
    wins over a dotted path, and paths only go through objects.
    """
    if name in row:
        return row[name]
    node: Any = row
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def map_row(row: dict, columns: dict[str, str]) -> dict:
    """The row as a training stage sees it after `dataset.columns` (sources renamed to their targets)."""
    if not columns:
        return row
    mapped = {k: v for k, v in row.items() if k not in columns}
    for src, dst in columns.items():
        value = get_field(row, src)
        if value is not _MISSING:
            mapped[dst] = value
    return mapped


def chat_prompt(prompt: Any, chat: bool, system_prompt: str | None) -> Any:
    """A string prompt as chat messages (system prompt first) when `chat` or `system_prompt` is set, like the
    training data (`rewardkit.train.data._chat`); chat-message prompts are left as they are."""
    if not (chat or system_prompt) or not isinstance(prompt, str):
        return prompt
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return system + [{"role": "user", "content": prompt}]


def _row_name(row: dict, i: int) -> str:
    return f"row {i}" + (f" (id {row['id']!r})" if isinstance(row.get("id"), (str, int)) else "")


def build_prompts(rows: list[dict], columns: dict[str, str], prompt_column: str = "prompt", chat: bool = False,
                  system_prompt: str | None = None, where: str = "input") -> list:
    """One prompt per row: columns mapped, then wrapped as chat messages when asked (as in training)."""
    prompts = []
    for i, row in enumerate(rows):
        value = map_row(row, columns).get(prompt_column, _MISSING)
        if value is _MISSING:
            mapping = f" after mapping columns {columns}" if columns else ""
            raise DataError(f"{where}: {_row_name(row, i)} has no {prompt_column!r}{mapping}; its keys are "
                            f"{sorted(row)}. Hint: map the prompt with --column SRC={prompt_column} (dotted names "
                            f"reach into objects, e.g. input.question={prompt_column}) or set --prompt-column.")
        messages = isinstance(value, list) and bool(value) and all(
            isinstance(m, dict) and "role" in m and "content" in m for m in value)
        if not (isinstance(value, str) or messages):
            raise DataError(f"{where}: {_row_name(row, i)}: the prompt is {type(value).__name__} "
                            f"({json.dumps(value, ensure_ascii=False)[:60]}). Hint: a string or a list of "
                            "{'role', 'content'} messages; for nested objects map the text field "
                            "(e.g. --column input.question=prompt).")
        if isinstance(value, str) and not value.strip() and not (chat or system_prompt):
            raise DataError(f"{where}: {_row_name(row, i)}: the prompt is empty. Hint: fix the row, or use --chat.")
        prompts.append(chat_prompt(value, chat, system_prompt))
    kinds = {isinstance(p, str) for p in prompts}
    if len(kinds) > 1:
        first = next(i for i, p in enumerate(prompts) if isinstance(p, str) != isinstance(prompts[0], str))
        raise DataError(f"{where}: the prompts mix strings and chat messages (row 0 vs {_row_name(rows[first], first)})."
                        " Hint: use one kind, or --chat to turn the strings into user turns.")
    return prompts


def parse_into(into: str) -> list[str]:
    """A dotted path such as `output.answer` as its parts."""
    parts = into.split(".") if isinstance(into, str) else []
    if not parts or any(not p.strip() for p in parts):
        raise ConfigError(f"--into {into!r}: expected a dotted key such as 'output.answer' or 'completion'. "
                          "Hint: no empty parts, no leading or trailing dot.")
    return parts


def check_into(rows: list[dict], parts: list[str], where: str = "input") -> None:
    """Refuse rows where an intermediate of the `--into` path exists and is not an object (null counts as absent)."""
    for i, row in enumerate(rows):
        node: Any = row
        for depth, part in enumerate(parts[:-1]):
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
            if not isinstance(node, dict):
                head = ".".join(parts[:depth + 1])
                raise DataError(f"{where}: {_row_name(row, i)}: --into {'.'.join(parts)!r} needs {head!r} to be an "
                                f"object, but it is {type(node).__name__} "
                                f"({json.dumps(node, ensure_ascii=False)[:60]}). Hint: choose another --into path, "
                                "e.g. the default 'completion'.")


def set_field(row: dict, parts: list[str], value: Any) -> dict:
    """A deep copy of `row` with `value` at the dotted path (intermediate objects created; null replaced)."""
    out = copy.deepcopy(row)
    node = out
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):  # absent or null (check_into refused every other value)
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return out


def output_format(path: str | Path) -> str:
    """'json' or 'jsonl' from the output file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise ConfigError(f"--output {str(path)!r}: unknown file type {suffix or '(no suffix)'!r}. Hint: .json "
                          "writes a JSON list (the competition's submission format), .jsonl one object per line.")
    return suffix[1:]


def write_rows(path: str | Path, rows: list[dict]) -> Path:
    """Atomically write `rows` as a JSON list or JSONL (by suffix)."""
    from .fileio import atomic_write_json, atomic_write_text

    if output_format(path) == "json":
        return Path(path).write_text(json.dumps(rows))
    try:
        lines = [json.dumps(row, ensure_ascii=False, allow_nan=False) for row in rows]
    except ValueError as exc:
        raise DataError(f"{path}: cannot write ({exc}). Hint: replace NaN/Infinity in the input.") from None
    return Path(path).write_text("".join(line + "\n" for line in lines))


# --- models ----------------------------------------------------------------------------------------------------
def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def resolve_model_source(model: str | Path) -> tuple[str, bool]:
    """(path or hub id, local_files_only). Local folders load offline; a hub id must already be in the cache
    (we never download here: an unreachable hub would be retried for tens of seconds)."""
    text = str(model)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            what = "a file" if not path.is_dir() else "a folder without config.json"
            hint = (" It holds adapter_config.json: pass it as --adapter DIR and its base model as MODEL."
                    if (path / "adapter_config.json").is_file() else "")
            raise ConfigError(f"model {text!r} is {what}, not a saved model.{hint} Hint: pass the folder holding "
                              "config.json and the weights (e.g. runs/sft/merged).")
        return str(path), True
    looks_like_path = text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1 or text.endswith("/")
    if looks_like_path or not _HUB_ID.match(text):
        raise ConfigError(f"model folder {text!r} does not exist. Hint: check the path (relative paths start at the "
                          "current directory).")
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(text, "config.json")
    except Exception:  # an id huggingface_hub refuses
        cached = None
    if not isinstance(cached, str):
        offline = " (HF_HUB_OFFLINE is set)" if _is_true(os.environ.get("HF_HUB_OFFLINE")) else ""
        raise ConfigError(f"model {text!r} is neither a local folder nor in the Hugging Face cache{offline}; "
                          "rewardkit generate does not download. Hint: pass a local folder (e.g. runs/sft/merged), "
                          f"or download it first: hf download {text}.")
    return text, True


def check_adapter(adapter: str | Path) -> Path:
    """The adapter folder, which must hold adapter_config.json."""
    path = Path(adapter).expanduser()
    if not path.is_dir():
        raise ConfigError(f"--adapter {str(adapter)!r} is not a folder. Hint: pass the folder holding "
                          "adapter_config.json (e.g. runs/x/best or runs/x/adapters/step_N).")
    if not (path / "adapter_config.json").is_file():
        hint = (" It holds a full model (config.json): pass it as MODEL without --adapter."
                if (path / "config.json").is_file() else "")
        raise ConfigError(f"--adapter {str(adapter)!r} has no adapter_config.json, so it is not a PEFT adapter."
                          f"{hint} Hint: pass the folder holding adapter_config.json (e.g. runs/x/best).")
    return path


def _has_tokenizer(folder: str | Path) -> bool:
    folder = Path(folder)
    return folder.is_dir() and any((folder / n).is_file() for n in ("tokenizer_config.json", "tokenizer.json"))


def resolve_device(device: str) -> str:
    import torch

    device = (device or "auto").strip().lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: no CUDA GPU is available. Hint: --device cpu (or auto).")
        return device
    raise ConfigError(f"--device {device!r}: expected auto, cpu or cuda (cuda:N). Hint: --device auto.")


def resolve_dtype(dtype: str, device: str) -> Any:
    """A torch dtype; `auto` = float32 on CPU and the checkpoint's own dtype on a GPU."""
    import torch

    name = (dtype or "auto").strip().lower()
    if name not in DTYPES:
        raise ConfigError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}. Hint: --dtype auto.")
    if name == "auto":
        return torch.float32 if device == "cpu" else "auto"
    return getattr(torch, name)


def load_model_for_inference(model: str | Path, adapter: str | Path | None = None, device: str = "auto",
                             dtype: str = "auto", tokenizer: str | Path | None = None) -> tuple[Any, Any]:
    """(model in eval mode on `device`, tokenizer) from a local folder or a cached hub id, plus a LoRA adapter.

    The adapter is applied unmerged, as during training (so outputs match what `checkpoint_inference` scored).
    The tokenizer comes from `tokenizer`, else the adapter folder when it holds one (lora_save and
    Trainer.save_model save it there), else the model.
    """
    source, local_only = resolve_model_source(model)
    adapter_dir = check_adapter(adapter) if adapter is not None else None
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok_source = str(tokenizer) if tokenizer is not None else (
        str(adapter_dir) if adapter_dir is not None and _has_tokenizer(adapter_dir) else source)
    try:
        tok = AutoTokenizer.from_pretrained(tok_source, local_files_only=local_only)
    except Exception as exc:
        raise ConfigError(f"cannot load the tokenizer from {tok_source!r} ({type(exc).__name__}: {str(exc)[:200]}). "
                          "Hint: pass a folder holding tokenizer files (--tokenizer in Python: tokenizer=).") from None
    try:
        lm = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, local_files_only=local_only)
    except Exception as exc:
        raise ConfigError(f"cannot load a causal LM from {source!r} ({type(exc).__name__}: {str(exc)[:200]}). "
                          "Hint: pass a folder saved with save_pretrained (a text-generation model; reward models "
                          "cannot generate).") from None
    if adapter_dir is not None:
        from peft import PeftModel

        try:
            lm = PeftModel.from_pretrained(lm, str(adapter_dir))
        except Exception as exc:
            raise ConfigError(f"adapter {str(adapter_dir)!r} does not fit model {source!r} ({type(exc).__name__}: "
                              f"{str(exc)[:200]}). Hint: pass the base model the adapter was trained on.") from None
    lm.to(dev)
    lm.eval()
    return lm, tok


# --- runs ------------------------------------------------------------------------------------------------------
@dataclass
class RunSettings:
    """What `--from-run` takes from a training run folder."""

    run_dir: str
    stage: str
    name: str
    model: str
    adapter: str | None
    tokenizer: str | None
    columns: dict[str, str] = field(default_factory=dict)
    chat: bool = False
    system_prompt: str | None = None
    checkpoint: str = ""  # the folder chosen: best, adapters/step_N or final


def _stage_record(run_dir: Path) -> tuple[Path, dict]:
    """(stage folder, its rewardkit_stage.json); a pipeline root resolves to its last stage."""
    if not run_dir.is_dir():
        raise ConfigError(f"--from-run {str(run_dir)!r} is not a folder. Hint: pass a training run's output_dir "
                          "(e.g. runs/sft).")
    from .fileio import read_json

    if (run_dir / STAGE_FILE).is_file():
        record = read_json(run_dir / STAGE_FILE)
    elif (run_dir / "summary.json").is_file():  # a pipeline's output root: use its last stage
        summary = read_json(run_dir / "summary.json")
        last = summary[-1] if isinstance(summary, list) and summary and isinstance(summary[-1], dict) else {}
        folder = run_dir / str(last.get("name", ""))
        if not (folder / STAGE_FILE).is_file() and last.get("output_dir"):
            folder = Path(last["output_dir"])
        if not (folder / STAGE_FILE).is_file():
            raise ConfigError(f"--from-run {str(run_dir)!r}: summary.json names no stage folder with {STAGE_FILE}. "
                              "Hint: pass the stage's folder (e.g. runs/x/<stage name>).")
        run_dir, record = folder, read_json(folder / STAGE_FILE)
    else:
        raise ConfigError(f"--from-run {str(run_dir)!r} has no {STAGE_FILE} (written when a `rewardkit train` stage "
                          "finishes). Hint: for an unfinished run pass MODEL --adapter DIR instead, e.g. "
                          f"rewardkit generate BASE_MODEL --adapter {run_dir}/best ...")
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise DataError(f"{run_dir / STAGE_FILE}: expected an object with a 'config' mapping. Hint: re-run the "
                        "stage, or pass MODEL --adapter DIR instead of --from-run.")
    return run_dir, record


def _newest_saved(folder: Path) -> Path | None:
    """lora_save's newest folder: highest step_N, else highest epoch_E."""
    if not folder.is_dir():
        return None
    found = [(m.group(1) == "step", int(m.group(2)), p) for p in folder.iterdir()
             if p.is_dir() and (m := _STEP_DIR.match(p.name))
             and ((p / "adapter_config.json").is_file() or (p / "config.json").is_file())]
    return max(found)[2] if found else None


def resolve_run(run_dir: str | Path, adapter: str | Path | None = None) -> RunSettings:
    """Model, adapter, tokenizer and prompt mapping of a `rewardkit train` run folder.

    The checkpoint is `best/` (best_checkpoint) if present, else lora_save's newest `adapters/step_N`, else the
    stage's `final/`; an explicit `adapter` overrides the choice. A folder holding an adapter is applied to the
    stage's base model; one holding a full model is used as the model.
    """
    folder, record = _stage_record(Path(run_dir))
    config = record["config"]
    stage, name = str(config.get("stage", "")), str(record.get("name") or config.get("name") or config.get("stage"))
    if stage == "rm":
        raise ConfigError(f"--from-run {str(folder)!r} is a reward-model stage (rm), which cannot generate text. "
                          "Hint: pass the run of an sft, dpo or grpo stage.")
    callbacks = {cb.get("name"): cb for cb in config.get("callbacks") or [] if isinstance(cb, dict)}
    best = folder / str(callbacks.get("best_checkpoint", {}).get("best_dir") or "best")
    saved = callbacks.get("lora_save", {}).get("output_dir")
    candidates = [("best", best), ("lora_save", _newest_saved(Path(saved) if saved else folder / "adapters")),
                  ("final", folder / "final")]
    if adapter is not None:
        candidates = [("--adapter", Path(adapter))]
        check_adapter(adapter)
    chosen = next((p for _, p in candidates if p is not None and p.is_dir()
                   and ((p / "adapter_config.json").is_file() or (p / "config.json").is_file())), None)
    if chosen is None:
        raise ConfigError(f"--from-run {str(folder)!r}: no best/, adapters/step_N/ or final/ folder with a model "
                          "or adapter. Hint: pass MODEL --adapter DIR instead.")
    data = config.get("dataset") or {}
    settings = RunSettings(run_dir=str(folder), stage=stage, name=name, model="", adapter=None,
                           tokenizer=config.get("tokenizer"), columns=dict(data.get("columns") or {}),
                           chat=bool(data.get("chat")), system_prompt=data.get("system_prompt"),
                           checkpoint=str(chosen))
    if (chosen / "adapter_config.json").is_file():
        settings.adapter = str(chosen)
        base = record.get("base_model") or config.get("model")
        if not base or str(base).startswith("@"):  # runs saved before base_model was recorded
            from .fileio import read_json

            base = read_json(chosen / "adapter_config.json").get("base_model_name_or_path")
        if not base:
            raise ConfigError(f"--from-run {str(folder)!r}: cannot tell the base model of adapter {str(chosen)!r}. "
                              "Hint: pass MODEL --adapter DIR instead.")
        settings.model = str(base)
    else:  # a full model (training without LoRA)
        settings.model = str(chosen)
        if settings.tokenizer is None and not _has_tokenizer(chosen):
            settings.tokenizer = str(config.get("model")) if not str(config.get("model")).startswith("@") else None
    return settings


# --- the whole job ---------------------------------------------------------------------------------------------
def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    # disable=None: the bar only shows on a terminal (no noise in logs and pipes).
    return tqdm(total=total, desc="generate", unit="row", file=sys.stderr, disable=None if enabled else True,
                dynamic_ncols=True)


def generate_file(model: Any, input_path: str | Path, output_path: str | Path, *, adapter: str | Path | None = None,
                  into: str | None = None, from_run: str | Path | None = None, tokenizer: Any = None,
                  columns: dict[str, str] | None = None, prompt_column: str = "prompt", chat: bool | None = None,
                  system_prompt: str | None = None, batch_size: int = 16, max_new_tokens: int = 256,
                  share_prefix: bool = True, device: str = "auto", dtype: str = "auto",
                  generation_kwargs: dict | None = None, progress: bool = True) -> GenerateResult:
    """Generate a completion for every row of `input_path` and write the rows, each with its completion at the
    dotted path `into` (default 'completion'), to `output_path` (.json list or .jsonl) atomically.

    `model`: a local folder or cached hub id (loaded with `load_model_for_inference`), or an already loaded model
    (then pass `tokenizer`); None with `from_run`, which takes model, adapter, columns, chat and system prompt
    from a `rewardkit train` run folder (explicit arguments win; `columns` replaces the run's mapping).
    Everything about the input and options is checked before the model loads.
    """
    started = time.perf_counter()
    if (model is None) == (from_run is None):
        raise ConfigError("give exactly one of MODEL and --from-run. Hint: rewardkit generate --from-run runs/x "
                          "--input test.json --output out.json, or rewardkit generate MODEL_DIR --input ...")
    if batch_size < 1 or max_new_tokens < 1:
        raise ConfigError(f"--batch-size ({batch_size}) and --max-new-tokens ({max_new_tokens}) must be >= 1.")
    run = None
    if from_run is not None:
        run = resolve_run(from_run, adapter)
        model, adapter = run.model, run.adapter
        tokenizer = tokenizer if tokenizer is not None else run.tokenizer
        columns = run.columns if columns is None else columns
        chat = run.chat if chat is None else chat
        system_prompt = run.system_prompt if system_prompt is None else system_prompt
    parts = parse_into(into or DEFAULT_INTO)
    output_format(output_path)
    rows = read_rows(input_path)
    where = str(input_path)
    prompts = build_prompts(rows, columns or {}, prompt_column, bool(chat), system_prompt, where)
    check_into(rows, parts, where)

    load_started = time.perf_counter()
    if isinstance(model, (str, os.PathLike)):
        lm, tok = load_model_for_inference(model, adapter, device, dtype, tokenizer)
        model_name = str(model)
    else:
        if adapter is not None:
            raise ConfigError("adapter= needs a model path, not a loaded model. Hint: load it with "
                              "load_model_for_inference(model, adapter).")
        if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
            from transformers import AutoTokenizer

            if tokenizer is None:
                raise ConfigError("a loaded model needs tokenizer=. Hint: pass the tokenizer object or its folder.")
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
        lm, tok = model, tokenizer
        model_name = str(getattr(lm, "name_or_path", type(lm).__name__))
    load_seconds = time.perf_counter() - load_started
    templated = not isinstance(prompts[0], str)
    if templated and not getattr(tok, "chat_template", None):
        raise ConfigError(f"the prompts are chat messages but the tokenizer of {model_name!r} has no chat template. "
                          "Hint: use a chat/instruct model's tokenizer, or drop --chat/--system-prompt for string "
                          "prompts.")

    from .callbacks.inference import generate_texts

    gen_started = time.perf_counter()
    with _progress_bar(len(rows), progress) as bar:
        outputs = generate_texts(lm, tok, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                 generation_kwargs=generation_kwargs, share_prefix=share_prefix,
                                 progress=bar.update)
    generate_seconds = time.perf_counter() - gen_started
    write_rows(output_path, [set_field(row, parts, text) for row, text in zip(rows, outputs)])
    param = next(lm.parameters())
    return GenerateResult(
        output=str(output_path), rows=len(rows), empty=sum(not text for text in outputs), model=model_name,
        adapter=None if adapter is None else str(adapter), device=str(param.device),
        dtype=str(param.dtype).removeprefix("torch."), load_seconds=round(load_seconds, 3),
        generate_seconds=round(generate_seconds, 3), seconds=round(time.perf_counter() - started, 3),
        run=None if run is None else {"folder": run.run_dir, "stage": run.stage, "name": run.name,
                                      "checkpoint": run.checkpoint})
