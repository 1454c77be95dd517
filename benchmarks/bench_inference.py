"""Per-checkpoint inference: rewardkit's live-model batched generation vs the seed's reload-and-loop.

    python benchmarks/bench_inference.py [--quick] [--json]

Each approach runs in its own fresh subprocess (so one's freed-but-kept heap cannot hide the other's growth).
Both start from the same state as a LoRA training process at a save: the model live in memory after a real
AdamW step, base model and that step's adapter on disk. Measured: CPU and wall time of the inference (minimum
over --rounds x --repeats runs; the ratio uses CPU time, as benchmarks/bench_metrics.py does: both workers use the same
thread count, and on this shared VM wall time swings by +-20 % between identical runs), and peak RSS growth
during the first run (psutil sampled every 2 ms in a thread) relative to the process RSS just before it.

- rewardkit: `rewardkit.engines.hf.generate_texts` on the live model, batched (callback default 16),
  left padding, the prompts' shared prefix encoded once.
- seed: `AutoModelForCausalLM.from_pretrained(base)` + `PeftModel.from_pretrained(adapter)`, then one
  `generate` per example (what the competition entrant's InferenceCallback did at every save).

Goals: speed ratio >= 5x, rewardkit's RSS growth <= 10 % of the process RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # shared 2-core machine; same for both approaches

HIDDEN, LAYERS, HEADS = 256, 4, 4  # defaults; --hidden / --layers change them


def _prompts(n: int) -> list:
    return [
        [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": f"Question {i}: what is {i} + {i * 3 % 17}? " + "Explain. " * (i % 4)},
        ]
        for i in range(n)
    ]


def prepare(folder: Path, hidden: int = HIDDEN, layers: int = LAYERS) -> None:
    """Save the base model, its tokenizer and a non-trivial LoRA adapter."""
    import torch
    from peft import LoraConfig, get_peft_model

    from rewardkit.core.tiny import build_char_tokenizer, build_tiny_causal_lm

    tok = build_char_tokenizer()
    model = build_tiny_causal_lm(tok, hidden_size=hidden, num_layers=layers, num_heads=HEADS)
    model.save_pretrained(folder / "base")
    tok.save_pretrained(folder / "base")
    torch.manual_seed(1)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )  # random B: the adapter changes outputs
    get_peft_model(model, config).save_pretrained(folder / "adapter")


class PeakRSS:
    """Peak resident set size of this process while the block runs (sampled in a thread)."""

    def __init__(self, interval: float = 0.002) -> None:
        import psutil

        self.proc, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.start = self.proc.memory_info().rss
        self.peak = self.start
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def worker(approach: str, folder: Path, n: int, max_new_tokens: int, batch_size: int, repeats: int = 2) -> dict:
    """Load the 'training' state, then time one checkpoint's inference with `approach`."""
    import gc

    import torch
    from baselines import generate_one_at_a_time  # benchmarks/ is on sys.path when run as a script
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit.engines.hf import generate_texts

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    tok = AutoTokenizer.from_pretrained(folder / "base")
    live = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(folder / "base"), folder / "adapter", is_trainable=True
    )
    live.train()  # as inside a training loop
    # A training process also holds gradients and AdamW state: take one real optimizer step so the RSS
    # baseline is a training process's, as in the callback's real setting.
    optimizer = torch.optim.AdamW([p for p in live.parameters() if p.requires_grad], lr=1e-4)
    ids = tok("warm up the optimizer state", return_tensors="pt")["input_ids"]
    live(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    live.save_pretrained(folder / "adapter_step")  # the checkpoint the seed approach reloads
    prompts = _prompts(n)
    generate_texts(live, tok, prompts[:2], max_new_tokens=2)  # warm up lazy inits for both approaches

    def run_once() -> list[str]:
        if approach == "rewardkit":
            return generate_texts(live, tok, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens)
        base = AutoModelForCausalLM.from_pretrained(folder / "base")
        model = PeftModel.from_pretrained(base, folder / "adapter_step")
        tok.padding_side = "left"
        return generate_one_at_a_time(model, tok, prompts, max_new_tokens)

    gc.collect()
    times, cpu = [], []
    for run in range(repeats):
        with PeakRSS() if run == 0 else contextlib.nullcontext() as measured:  # later runs reuse a grown heap
            started, started_cpu = time.perf_counter(), time.process_time()
            result = run_once()
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        if run == 0:
            outputs, rss = result, measured
    return {
        "approach": approach,
        "seconds": min(times),
        "cpu_seconds": min(cpu),
        "rss_before_mb": rss.start / 2**20,
        "rss_peak_growth_mb": (rss.peak - rss.start) / 2**20,
        "outputs": outputs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 examples, 16 new tokens.")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    parser.add_argument("--worker", choices=["rewardkit", "seed"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=16, help="rewardkit's batch size (callback default 16).")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each worker.")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per worker (the minimum is kept).")
    parser.add_argument("--rounds", type=int, default=3, help="worker pairs, alternating which approach goes first.")
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="model hidden size.")
    parser.add_argument("--layers", type=int, default=LAYERS, help="model layers.")
    opts = parser.parse_args()
    n, new_tokens = (16, 16) if opts.quick else (64, 32)
    if opts.worker:
        print(json.dumps(worker(opts.worker, opts.folder, n, new_tokens, opts.batch_size, opts.repeats)))
        return
    with tempfile.TemporaryDirectory(prefix="rk-bench-inference-") as tmp:
        folder = Path(tmp)
        prepare(folder, opts.hidden, opts.layers)
        runs: dict[str, list[dict]] = {"rewardkit": [], "seed": []}
        # Rounds alternate the order: this VM's speed drifts by tens of percent over minutes, and running one
        # approach entirely before the other would hand the drift to one side.
        for round_ in range(opts.rounds):
            for approach in ("rewardkit", "seed") if round_ % 2 == 0 else ("seed", "rewardkit"):
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    approach,
                    "--folder",
                    str(folder),
                    "--batch-size",
                    str(opts.batch_size),
                    "--repeats",
                    str(opts.repeats),
                ] + (["--quick"] if opts.quick else [])
                env = {**os.environ, "OMP_NUM_THREADS": str(opts.threads)}
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
                if proc.returncode != 0:
                    raise SystemExit(f"{approach} worker failed:\n{proc.stderr[-3000:]}")
                runs[approach].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    # Fastest run of each approach; the largest RSS growth any round saw (the conservative side of the goal).
    results = {
        k: {
            **r[0],
            "seconds": min(x["seconds"] for x in r),
            "cpu_seconds": min(x["cpu_seconds"] for x in r),
            "rss_before_mb": max(r, key=lambda x: x["rss_peak_growth_mb"])["rss_before_mb"],
            "rss_peak_growth_mb": max(x["rss_peak_growth_mb"] for x in r),
        }
        for k, r in runs.items()
    }
    ours, seed = results["rewardkit"], results["seed"]
    same = sum(a == b for a, b in zip(ours.pop("outputs"), seed.pop("outputs")))
    summary = {
        "examples": n,
        "max_new_tokens": new_tokens,
        "batch_size": opts.batch_size,
        "threads": opts.threads,
        "model": f"qwen2 hidden {opts.hidden}, {opts.layers} layers + LoRA r=8",
        "speed_ratio": seed["cpu_seconds"] / ours["cpu_seconds"],
        "wall_speed_ratio": seed["seconds"] / ours["seconds"],
        "identical_outputs": same,
        **{f"{k}_{key}": v for k, r in results.items() for key, v in r.items() if key != "approach"},
    }
    for k, r in results.items():
        summary[f"{k}_rss_growth_pct"] = 100 * r["rss_peak_growth_mb"] / r["rss_before_mb"]
    if opts.json:
        print(json.dumps(summary, indent=2))
        return
    print(
        f"{n} examples x {new_tokens} new tokens, {summary['model']}, {opts.threads} thread(s), batch {opts.batch_size}"
    )
    print(f"{'approach':<34}{'CPU s':>8}{'wall s':>8}{'RSS before':>12}{'peak growth':>13}{'growth %':>10}")
    for label, key in (("rewardkit (live model, batched)", "rewardkit"), ("seed (reload + one at a time)", "seed")):
        r = results[key]
        print(
            f"{label:<34}{r['cpu_seconds']:>8.2f}{r['seconds']:>8.2f}{r['rss_before_mb']:>10.0f}MB{r['rss_peak_growth_mb']:>11.1f}MB"
            f"{summary[key + '_rss_growth_pct']:>9.1f}%"
        )
    per_round = ", ".join(
        f"{s['cpu_seconds'] / o['cpu_seconds']:.1f}x" for o, s in zip(runs["rewardkit"], runs["seed"])
    )
    print(f"per round (CPU): {per_round}")
    print(
        f"speed ratio: {summary['speed_ratio']:.1f}x CPU time (goal >= 5x), {summary['wall_speed_ratio']:.1f}x wall; "
        f"rewardkit RSS growth "
        f"{summary['rewardkit_rss_growth_pct']:.1f}% (goal <= 10%); identical greedy outputs: {same}/{n}"
    )


if __name__ == "__main__":
    main()
