"""The `hf` engine: batched, left-padded, greedy `model.generate` on a (live) transformers model, the prompts'
shared prefix encoded once, each batch decoded into a static KV cache. `checkpoint_inference`, `rewardkit generate` and the demo all generate through it."""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

import transformers

from rewardkit.engines.prompts import render_prompts

if TYPE_CHECKING:
    from transformers import GenerationConfig, PreTrainedTokenizerBase

# generate()'s KV-cache argument: transformers 5.24 renamed `past_key_values` to `cache` (the old name warns and
# goes away later); 5.23 and older refuse `cache` ("model_kwargs are not used"), measured with 5.23.0.
_CACHE_KWARG = (
    "cache" if tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (5, 24) else "past_key_values"
)


def can_generate(model: object) -> bool:
    """Whether `model.generate` can produce text (False for sequence-classification models)."""
    check = getattr(model, "can_generate", None)
    return bool(check()) if callable(check) else hasattr(model, "generate")


@contextmanager
def generation_mode(model: Any, tokenizer: PreTrainedTokenizerBase) -> Iterator[None]:
    """Eval mode, no activation checkpointing, left padding; every flag restored exactly afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    # Toggle the per-layer flags instead of *_disable()/*_enable(): re-enabling could not restore the
    # checkpointing function or every_n_layers the trainer chose.
    ckpt = [
        (m, m.gradient_checkpointing)
        for m in model.modules()
        if isinstance(getattr(m, "gradient_checkpointing", None), bool)
    ]
    side, pad = tokenizer.padding_side, tokenizer.pad_token
    try:
        model.eval()  # LoRA dropout would otherwise change greedy outputs
        for m, _ in ckpt:
            m.gradient_checkpointing = False
        tokenizer.padding_side = "left"  # decoder-only: the completion must start right after the prompt
        if pad is None:
            tokenizer.pad_token = tokenizer.eos_token
        yield
    finally:
        for m, training in modes:
            m.training = training
        for m, flag in ckpt:
            m.gradient_checkpointing = flag
        tokenizer.padding_side = side
        if pad is None:
            tokenizer.pad_token = None


@contextmanager
def root_unsharded(model: object) -> Iterator[None]:
    """FSDP: hold the root module's own parameters (embeddings, head, norm) gathered while generating.

    `generate` calls the inner model's forward, not the root's (a PeftModel or an FSDP1 wrapper sharded whole),
    so the root's pre-forward all-gather would never run. A collective: every rank enters it together.
    """
    try:
        from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel
    except ImportError:  # pragma: no cover - torch without distributed
        yield
        return
    if isinstance(model, FullyShardedDataParallel):  # FSDP1: its own context manager, root only
        with FullyShardedDataParallel.summon_full_params(model, recurse=False, writeback=False):
            yield
        return
    if not isinstance(model, FSDPModule):
        yield
        return
    model.unshard()
    try:
        yield
    finally:
        model.reshard()


def generation_config(
    model: object, tokenizer: PreTrainedTokenizerBase, max_new_tokens: int, overrides: dict
) -> GenerationConfig:
    """The model's generation config made greedy (unless overridden), one sequence per prompt."""
    from transformers import GenerationConfig

    base = getattr(model, "generation_config", None)
    config = copy.deepcopy(base) if base is not None else GenerationConfig()
    # Greedy: sampling would make the checkpoint ranking noisy. Clear sampling knobs so no warning fires.
    config.update(
        do_sample=False,
        temperature=None,
        top_p=None,
        top_k=None,
        num_beams=1,
        use_cache=True,
        max_new_tokens=max_new_tokens,
    )
    config.update(**overrides)
    config.num_return_sequences = 1
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    return config


MIN_SHARED_PREFIX = 8  # tokens; below this the extra forward pass is not worth it


def shared_prefix_length(ids: list[list[int]]) -> int:
    """Tokens every sequence starts with, leaving each at least one token of its own.

    >>> shared_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]])
    2
    """
    if len(ids) < 2:
        return 0
    limit = min(len(seq) for seq in ids) - 1
    n = 0
    while n < limit and all(seq[n] == ids[0][n] for seq in ids):
        n += 1
    return n


def _prefix_cache(model: Any, prefix: list[int], device: Any, config: Any) -> Any:
    """The KV cache of `prefix` (batch of one), or None where it cannot be reused for a batch."""
    import torch

    # generate() refuses a cache object beside a cache_implementation the caller chose
    if len(prefix) < MIN_SHARED_PREFIX or config.num_beams != 1 or config.cache_implementation is not None:
        return None
    with torch.no_grad():
        out = model(input_ids=torch.tensor([prefix], device=device), use_cache=True)
    # transformers 5.24+ returns it as `cache` (reading `past_key_values` warns); older versions as past_key_values
    cache = out.get("cache") if "cache" in out else out.get("past_key_values")
    return cache if callable(getattr(cache, "batch_repeat_interleave", None)) else None


def _static_cache(model: Any, prefix_cache: Any, rows: int, max_len: int) -> Any:
    """A preallocated (static) KV cache for one batch of `rows` sequences up to `max_len` tokens, holding the shared
    prefix's keys and values in every row when `prefix_cache` is given; None where the model's cache layout does
    not allow one (then generate() grows a dynamic cache).

    Why: a dynamic cache concatenates every layer's whole cache at every new token, so the copying grows with
    batch x length and was half the CPU time of a batched generation (cProfile of benchmarks/bench_generate.py:
    torch.cat 6.9 s of 15.5 s); a static cache writes each new token in place.
    """
    from transformers import StaticCache

    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model  # a PeftModel
    if not getattr(base, "_can_compile_fullgraph", False):  # the model's own "static shapes work" declaration
        return None
    try:
        cache = StaticCache(config=model.config, max_cache_len=max_len)
        if any(type(layer).__name__ != "StaticLayer" for layer in cache.layers):
            return None  # sliding-window or other layers: their masks differ, keep generate()'s own cache
        if prefix_cache is not None:
            for index, layer in enumerate(prefix_cache.layers):
                keys, values = layer.keys, layer.values
                cache.update(keys.expand(rows, *keys.shape[1:]), values.expand(rows, *values.shape[1:]), index)
        return cache
    except Exception:  # an architecture StaticCache does not know: the dynamic cache works everywhere
        return None


def generate_texts(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list,
    *,
    batch_size: int = 16,
    max_new_tokens: int = 128,
    generation_kwargs: dict | None = None,
    use_chat_template: bool | None = None,
    share_prefix: bool = True,
    progress: Callable[[int], object] | None = None,
    synced_gpus: bool = False,
) -> list[str]:
    """Batched, left-padded generation (greedy unless generation_kwargs say otherwise) with the given (live)
    model; completions cut at the input width.

    With `share_prefix`, the tokens all prompts start with (system prompt, instructions) are encoded once and
    their KV cache is copied into every batch: rows are laid out as [prefix][padding][own tokens], the
    attention mask hides the padding and positions follow the mask, so outputs equal unshared generation up to
    float rounding. Each batch decodes into a preallocated static KV cache where the model supports one (a dynamic
    cache copies itself whole at every token). `progress`, if given, is called with the number of prompts each finished batch held.
    `synced_gpus` (sharded models: FSDP, ZeRO-3) keeps a rank that finished early taking part in the others'
    forward passes; prefix sharing is then off (its extra forward would be one rank's alone).
    """
    if not prompts:  # a rank whose shard is empty: nothing to render (and no chat-template check to fail)
        return []

    import torch

    texts, templated = render_prompts(tokenizer, prompts, use_chat_template)
    device = getattr(model, "device", None) or next(model.parameters()).device
    ids = tokenizer(texts, add_special_tokens=not templated)["input_ids"]
    shared = shared_prefix_length(ids) if share_prefix and not synced_gpus else 0
    # Batch prompts of similar length (longest first): less left padding means less wasted compute.
    order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
    outputs: list[str] = [""] * len(texts)
    with generation_mode(model, tokenizer), root_unsharded(model):
        config = generation_config(model, tokenizer, max_new_tokens, generation_kwargs or {})
        cache = _prefix_cache(model, ids[0][:shared], device, config) if shared else None
        prefix = ids[0][:shared] if cache is not None else []
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            own = [ids[i][len(prefix) :] for i in rows]
            width = max(len(seq) for seq in own)
            input_ids = torch.tensor(
                [prefix + [tokenizer.pad_token_id] * (width - len(seq)) + seq for seq in own], device=device
            )
            mask = torch.tensor(
                [[1] * len(prefix) + [0] * (width - len(seq)) + [1] * len(seq) for seq in own], device=device
            )
            extra = {}
            new_tokens = config.max_new_tokens if config.max_new_tokens is not None else config.max_length - width
            # synced_gpus (FSDP, ZeRO-3): a rank may run extra forward passes after it finished, past any fixed size;
            # beams multiply the rows; a cache_implementation the caller chose is generate()'s to build.
            plain = not synced_gpus and config.num_beams == 1 and config.cache_implementation is None
            static = _static_cache(model, cache, len(rows), input_ids.shape[1] + new_tokens) if plain else None
            if static is not None:
                extra[_CACHE_KWARG] = static
            elif cache is not None:
                extra[_CACHE_KWARG] = copy.deepcopy(cache)  # generate() extends the cache it is given
                extra[_CACHE_KWARG].batch_repeat_interleave(len(rows))
            with torch.no_grad():
                if synced_gpus:
                    extra["synced_gpus"] = True
                out = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config, **extra)
            for i, text in zip(rows, tokenizer.batch_decode(out[:, input_ids.shape[1] :], skip_special_tokens=True)):
                outputs[i] = text
            if progress is not None:
                progress(len(rows))
    return outputs
