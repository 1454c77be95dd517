"""`rewardkit generate --engine`: `hf` (the live-model path, the default) or `vllm` (vllm.LLM on the same prompts,
template, stop rules and output files; see rewardkit.engines.vllm_engine)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rewardkit.core.errors import ConfigError
from rewardkit.generation.loading import check_adapter, load_tokenizer, resolve_dtype, resolve_model_source

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from rewardkit.engines.vllm_engine import VLLMEngine

ENGINES = ("hf", "vllm")


def check_engine(engine: str, model: object) -> str:
    """The engine name, checked: one of ENGINES; vllm needs a model folder or id (it loads its own weights)."""
    name = (engine or "hf").strip().lower()
    if name not in ENGINES:
        raise ConfigError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}.", hint="--engine hf.")
    if name == "vllm" and not isinstance(model, (str, os.PathLike)):
        raise ConfigError(
            "--engine vllm needs a model folder or cached hub id, not a loaded model.",
            hint="pass the folder, or engine='hf' for a model object.",
        )
    return name


def start_vllm(
    model: str | Path,
    adapter: str | Path | None,
    tokenizer: str | Path | None,
    dtype: str,
    prompts: list,
    max_new_tokens: int,
    vllm_kwargs: dict | None = None,
) -> tuple[VLLMEngine, PreTrainedTokenizerBase, str]:
    """(started VLLMEngine, tokenizer, model name): the tokenizer is chosen as for `hf` (tokenizer, else the
    adapter folder's, else the model's); the adapter goes through vLLM's LoRA support."""
    from rewardkit.engines.vllm_engine import VLLMEngine, import_vllm

    import_vllm()  # a missing vllm is reported before anything loads
    source, local_only = resolve_model_source(model)
    adapter_dir = check_adapter(adapter) if adapter is not None else None
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = resolve_dtype(dtype, device)
    vllm_dtype = resolved if isinstance(resolved, str) else str(resolved).removeprefix("torch.")
    tok = load_tokenizer(tokenizer, adapter_dir, source, local_only)
    engine = VLLMEngine(
        source, tok, adapter=adapter_dir, dtype=vllm_dtype, llm_kwargs=vllm_kwargs, local_only=local_only
    )
    engine.prepare(prompts, max_new_tokens)
    return engine, tok, source
