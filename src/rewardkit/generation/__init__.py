"""`rewardkit generate`: generate a test set with a trained model (or a run's best adapter) into a submission file.

    rewardkit generate --from-run runs/competition --input test.json --into output.answer --output submission.json

Generation is `checkpoint_inference`'s (`rewardkit.engines.hf.generate_texts`): greedy, batched, left
padded, chat-templated, the prompts' shared prefix encoded once. Prompts come from the input rows the way a
training stage's `dataset` section maps them (`columns` with dotted names, `chat`, `system_prompt`), so test
prompts look like the training prompts. Each output row is a copy of its input row with the completion written
at `into` (a dotted path; default `completion`). The output format follows the output suffix (.json: a JSON
list, .jsonl: one object per line) and the file is written atomically (never partially).

Example:
>>> from rewardkit.generation import generate_file
>>> result = generate_file("runs/sft/merged", "test.json", "submission.json", into="output.answer",
...                        columns={"input.question": "prompt"}, chat=True)  # doctest: +SKIP

Modules: `rows` (input, prompt mapping, `--into`, output), `loading` (model + adapter, offline), `runs`
(`--from-run`); this one runs the whole job.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rewardkit.core.errors import ConfigError
from rewardkit.core.fileio import check_output
from rewardkit.core.specs import read_chat_template
from rewardkit.generation.engine_choice import ENGINES, check_engine, start_vllm
from rewardkit.generation.loading import DTYPES, check_adapter, load_model_for_inference, resolve_model_source
from rewardkit.generation.rows import (
    DEFAULT_INTO,
    build_prompts,
    chat_prompt,
    check_into,
    check_into_keeps_identity,
    get_field,
    map_row,
    output_format,
    parse_columns,
    parse_into,
    read_rows,
    set_field,
    write_rows,
)
from rewardkit.generation.runs import STAGE_FILE, RunSettings, resolve_run

__all__ = [
    "DEFAULT_INTO",
    "DTYPES",
    "ENGINES",
    "STAGE_FILE",
    "GenerateResult",
    "RunSettings",
    "build_prompts",
    "chat_prompt",
    "check_adapter",
    "check_into",
    "check_into_keeps_identity",
    "generate_file",
    "get_field",
    "load_model_for_inference",
    "map_row",
    "output_format",
    "parse_columns",
    "parse_into",
    "read_rows",
    "resolve_model_source",
    "resolve_run",
    "set_field",
    "write_rows",
]


@dataclass
class GenerateResult:
    """What `generate_file` did: counts, the model it used and where the time went."""

    output: str
    rows: int
    empty: int  # rows whose completion is empty or whitespace only
    model: str
    adapter: str | None
    device: str
    dtype: str
    load_seconds: float
    generate_seconds: float
    seconds: float  # total, reading and writing included
    run: dict[str, Any] | None = None  # what --from-run chose (stage, folder), when used
    engine: str = "hf"

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.generate_seconds if self.generate_seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Prompts per generate() call of `rewardkit generate`: offline, the model has the device to itself (the
# checkpoint_inference callback keeps 16 beside training). benchmarks/bench_generate.py, CPU time against one
# model.generate per row: 5.5x at 32, 4.3x at 16 (a static KV cache grows with it: rows x (prompt + new tokens)).
DEFAULT_BATCH_SIZE = 32
MAX_NEW_TOKENS = 1_000_000  # beyond any context window; the tokens of one row are allocated up front


def _placement(lm: Any) -> tuple[str, str]:
    param = next(lm.parameters())
    return str(param.device), str(param.dtype).removeprefix("torch.")


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    # disable=None: the bar only shows on a terminal (no noise in logs and pipes).
    return tqdm(
        total=total, desc="generate", unit="row", file=sys.stderr, disable=None if enabled else True, dynamic_ncols=True
    )


def generate_file(
    model: Any,
    input_path: str | Path,
    output_path: str | Path,
    *,
    adapter: str | Path | None = None,
    into: str | None = None,
    from_run: str | Path | None = None,
    tokenizer: Any = None,
    columns: dict[str, str] | None = None,
    prompt_column: str = "prompt",
    chat: bool | None = None,
    system_prompt: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_new_tokens: int = 256,
    share_prefix: bool = True,
    device: str = "auto",
    dtype: str = "auto",
    generation_kwargs: dict | None = None,
    progress: bool = True,
    into_overwrite: bool = False,
    chat_template: str | None = None,
    engine: str = "hf",
    vllm_kwargs: dict | None = None,
) -> GenerateResult:
    """Generate a completion for every row of `input_path` and write the rows, each with its completion at the
    dotted path `into` (default 'completion'), to `output_path` (.json list or .jsonl) atomically. An `into`
    replacing the row's id or the prompt's source field is refused unless `into_overwrite`.

    `model`: a local folder or cached hub id (loaded with `load_model_for_inference`), or an already loaded model
    (then pass `tokenizer`); None with `from_run`, which takes model, adapter, columns, chat and system prompt
    from a `rewardkit train` run folder (explicit arguments win; `columns` replaces the run's mapping).
    `chat_template` (a file or a Jinja string) replaces the tokenizer's, for models whose template is missing or
    wrong. Everything about the input and options is checked before the model loads. `engine`: 'hf' (the
    default) or 'vllm' (same prompts, template, stop rules and output; `vllm_kwargs` go to vllm.LLM).
    """
    started = time.perf_counter()
    if (model is None) == (from_run is None):
        raise ConfigError(
            "give exactly one of MODEL and --from-run.",
            hint="rewardkit generate --from-run runs/x "
            "--input test.json --output out.json, or rewardkit generate MODEL_DIR --input ...",
        )
    if batch_size < 1 or max_new_tokens < 1:
        raise ConfigError(f"--batch-size ({batch_size}) and --max-new-tokens ({max_new_tokens}) must be >= 1.")
    if max_new_tokens > MAX_NEW_TOKENS:  # 99999999999 was a 140-line traceback from torch's allocator
        raise ConfigError(
            f"--max-new-tokens {max_new_tokens} is more than any model generates (at most {MAX_NEW_TOKENS}).",
            hint="--max-new-tokens 256.",
        )
    run = None
    if from_run is not None:
        run = resolve_run(from_run, adapter)
        model, adapter = run.model, run.adapter
        tokenizer = tokenizer if tokenizer is not None else run.tokenizer
        columns = run.columns if columns is None else columns
        chat = run.chat if chat is None else chat
        system_prompt = run.system_prompt if system_prompt is None else system_prompt
    engine = check_engine(engine, model)
    parts = parse_into(into or DEFAULT_INTO)
    check_into_keeps_identity(parts, columns or {}, prompt_column, into_overwrite)  # id, the prompt's field
    output_format(output_path)
    check_output(output_path)  # a FIFO or a folder as --output is refused before the model loads
    template = read_chat_template(chat_template, "--chat-template") if chat_template is not None else None
    rows = read_rows(input_path)
    where = str(input_path)
    prompts = build_prompts(rows, columns or {}, prompt_column, bool(chat), system_prompt, where)
    check_into(rows, parts, where)

    load_started = time.perf_counter()
    vllm_engine = None
    if engine == "vllm":
        vllm_engine, tok, model_name = start_vllm(
            model, adapter, tokenizer, dtype, prompts, max_new_tokens, vllm_kwargs
        )
        lm = None
    elif isinstance(model, (str, os.PathLike)):
        lm, tok = load_model_for_inference(model, adapter, device, dtype, tokenizer)
        model_name = str(model)
    else:
        if adapter is not None:
            raise ConfigError(
                "adapter= needs a model path, not a loaded model.",
                hint="load it with load_model_for_inference(model, adapter).",
            )
        if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
            from transformers import AutoTokenizer

            if tokenizer is None:
                raise ConfigError("a loaded model needs tokenizer=.", hint="pass the tokenizer object or its folder.")
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
        lm, tok = model, tokenizer
        model_name = str(getattr(lm, "name_or_path", type(lm).__name__))
    load_seconds = time.perf_counter() - load_started
    if template is not None:
        tok.chat_template = template
    templated = not isinstance(prompts[0], str)
    if templated and template is None and isinstance(getattr(tok, "chat_template", None), str):
        from rewardkit.core.chat_templates import check_chat_template

        check_chat_template(tok.chat_template, f"the tokenizer of {model_name!r}")  # bounded, one line
    if templated and not getattr(tok, "chat_template", None):
        raise ConfigError(
            f"the prompts are chat messages but the tokenizer of {model_name!r} has no chat template.",
            hint="use a chat/instruct model's tokenizer, or drop --chat/--system-prompt for string prompts.",
        )

    from rewardkit.engines.hf import generate_texts

    gen_started = time.perf_counter()
    generate_seconds: float | None = None
    with _progress_bar(len(rows), progress) as bar:
        if vllm_engine is not None:
            try:
                outputs = vllm_engine.generate(
                    prompts, max_new_tokens=max_new_tokens, generation_kwargs=generation_kwargs, progress=bar.update
                )
                generate_seconds = (
                    time.perf_counter() - gen_started
                )  # the engine's shutdown (seconds) is not generation
            finally:
                vllm_engine.close()
        else:
            outputs = generate_texts(
                lm,
                tok,
                prompts,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                generation_kwargs=generation_kwargs,
                share_prefix=share_prefix,
                progress=bar.update,
            )
    if generate_seconds is None:
        generate_seconds = time.perf_counter() - gen_started
    write_rows(output_path, [set_field(row, parts, text) for row, text in zip(rows, outputs)])
    device_name, dtype_name = ("vllm", vllm_engine.dtype) if vllm_engine is not None else _placement(lm)
    return GenerateResult(
        output=str(output_path),
        rows=len(rows),
        empty=sum(not text.strip() for text in outputs),
        model=model_name,
        adapter=None if adapter is None else str(adapter),
        device=device_name,
        dtype=dtype_name,
        engine=engine,
        load_seconds=round(load_seconds, 3),
        generate_seconds=round(generate_seconds, 3),
        seconds=round(time.perf_counter() - started, 3),
        run=None
        if run is None
        else {"folder": run.run_dir, "stage": run.stage, "name": run.name, "checkpoint": run.checkpoint},
    )
