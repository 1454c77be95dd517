"""What the benchmarks compare rewardkit with: plain `model.generate`, one prompt at a time, greedy.

Written without rewardkit on purpose (it is the seed pipeline's loop), and shared by bench_inference.py and
bench_generate.py so both measure against the same baseline.
"""

from __future__ import annotations

from typing import Any


def generate_one_at_a_time(model: Any, tok: Any, prompts: list, max_new_tokens: int) -> list[str]:
    """Greedy completions of chat-message prompts, one `generate` call per prompt (chat template applied)."""
    import torch

    model.eval()
    texts = []
    for messages in prompts:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        batch = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        texts.append(tok.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True))
    return texts
