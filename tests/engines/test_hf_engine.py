"""The hf engine's static KV cache: the same greedy text as transformers' own `generate` (dynamic cache, one
prompt at a time), with and without the shared prefix, and the fallbacks where a static cache does not fit."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    """A tiny Qwen2 whose greedy answers differ from prompt to prompt (init 0.2), so equality means something."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit.core.tiny import save_tiny_causal_lm

    path = save_tiny_causal_lm(tmp_path_factory.mktemp("varied"), hidden_size=64, num_heads=4, initializer_range=0.2)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def _prompts():
    system = {"role": "system", "content": "Answer the arithmetic question with one number, then stop."}
    return [[system, {"role": "user", "content": f"{a} + {b} =" + " ?" * (a % 4)}] for a in range(6) for b in (2, 7)]


def _reference(model, tok, prompts, new_tokens):
    """transformers' generate with its default (dynamic) cache, one prompt at a time: no rewardkit code."""
    import torch

    out = []
    for messages in prompts:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        batch = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            ids = model.generate(**batch, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        out.append(tok.decode(ids[0, batch["input_ids"].shape[1] :], skip_special_tokens=True))
    return out


def _caches_seen(model):
    """Record the type of the KV cache each forward pass of generate() gets."""
    seen: list[str] = []

    def hook(module, args, kwargs):
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        seen.append(type(cache).__name__)

    return seen, model.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("share_prefix", [True, False])
def test_static_cache_generation_equals_transformers_generate(varied, share_prefix):
    from rewardkit.engines.hf import generate_texts

    model, tok = varied
    prompts = _prompts()
    reference = _reference(model, tok, prompts, 12)
    assert len(set(reference)) > len(prompts) // 2  # the model's answers differ: equality is not trivial
    seen, handle = _caches_seen(model)
    try:
        got = generate_texts(model, tok, prompts, batch_size=5, max_new_tokens=12, share_prefix=share_prefix)
    finally:
        handle.remove()
    assert got == reference
    assert "StaticCache" in seen and "DynamicCache" not in seen


def test_no_static_cache_with_beams_or_a_chosen_cache(varied):
    from rewardkit.engines.hf import generate_texts

    model, tok = varied
    prompts = _prompts()[:4]
    for kwargs in ({"num_beams": 2}, {"cache_implementation": "dynamic"}):
        seen, handle = _caches_seen(model)
        try:
            out = generate_texts(model, tok, prompts, max_new_tokens=4, generation_kwargs=kwargs)
        finally:
            handle.remove()
        assert len(out) == len(prompts) and "StaticCache" not in seen, kwargs


def test_a_model_without_static_shapes_keeps_the_dynamic_cache(varied, monkeypatch):
    from rewardkit.engines.hf import _static_cache, generate_texts

    model, tok = varied
    assert _static_cache(model, None, 2, 16) is not None
    monkeypatch.setattr(type(model), "_can_compile_fullgraph", False)
    assert _static_cache(model, None, 2, 16) is None
    prompts = _prompts()[:4]
    assert generate_texts(model, tok, prompts, max_new_tokens=6) == _reference(model, tok, prompts, 6)
