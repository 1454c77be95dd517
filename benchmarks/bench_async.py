"""Async rewards, measured side by side in one run: k = 1, 2, 4 async components of fixed latency, one after the
other (how rewardkit scored them before: 1.0 s for two 0.5 s components) vs a composition that awaits them together
(goal: about one latency whatever k), for a linear (`a + b + ...`) and a non-linear (`a * b * ...`) combine, and
`workers: N` against in process for a CPU-bound reward (ROUGE-1 on long texts).

`measure_async(k, latency)` is importable (benchmarks/bench_serve.py reports it beside the server figures).

Run: python benchmarks/bench_async.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: this folder's modules import

from rewardkit import compose, get_reward  # noqa: E402


class FixedLatency:
    """An async reward function that awaits `latency` seconds (a remote scorer's stand-in); picklable."""

    def __init__(self, latency: float) -> None:
        self.latency = latency

    async def __call__(self, completions: list, **kwargs: object) -> list[float]:
        await asyncio.sleep(self.latency)
        return [float(len(str(c))) for c in completions]


def measure_async(k: int, latency: float = 0.25, rows: int = 8, combine: str = "+") -> dict[str, float]:
    """Seconds for k async components of `latency`: {"sequential", "concurrent"} (concurrent: `compose`'s call)."""
    spec = {
        "rewards": {f"c{i}": FixedLatency(latency) for i in range(k)},
        "combine": combine.join(f"c{i}" for i in range(k)),
    }
    composed = compose(spec)
    kwargs = {"completions": [f"completion {i}" for i in range(rows)]}
    composed(**kwargs)  # warm up (the shared event loop, first imports)

    async def one_after_another() -> None:
        for reward in composed.components.values():
            await reward.acall(**kwargs)

    start = time.perf_counter()
    asyncio.run(one_after_another())
    sequential = time.perf_counter() - start
    start = time.perf_counter()
    composed(**kwargs)
    concurrent = time.perf_counter() - start
    return {"sequential": sequential, "concurrent": concurrent}


def measure_workers(n: int, rows: int, words: int) -> dict[str, float]:
    """Seconds for ROUGE-1 on `rows` long texts: in process vs `workers: n` (after the workers started)."""
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(500)]
    preds = [" ".join(rng.choices(vocab, k=words)) for _ in range(rows)]
    golds = [" ".join(rng.choices(vocab, k=words)) for _ in range(rows)]
    local = get_reward("rouge1", reference="answer")
    split = get_reward("rouge1", reference="answer", workers=n)
    split(completions=preds[:n], answer=golds[:n])  # start the workers: their start-up is not scoring time
    local(completions=preds[:n], answer=golds[:n])  # the same first-call imports in this process
    start = time.perf_counter()
    expected = local(completions=preds, answer=golds)
    in_process = time.perf_counter() - start
    start = time.perf_counter()
    got = split(completions=preds, answer=golds)
    in_workers = time.perf_counter() - start
    assert got == expected, "workers: must give the in-process scores"
    return {"in_process": in_process, "workers": in_workers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter latency and fewer rows")
    args = parser.parse_args()
    latency = 0.1 if args.quick else 0.25
    for combine, label in (("+", "linear"), ("*", "product")):
        for k in (1, 2, 4):
            t = measure_async(k, latency, combine=combine)
            print(
                f"async {label} k={k} latency={latency}s: sequential {t['sequential']:.3f}s, concurrent "
                f"{t['concurrent']:.3f}s, speed-up {t['sequential'] / t['concurrent']:.2f}x"
            )
    rows, words = (64, 300) if args.quick else (256, 1000)
    t = measure_workers(2, rows, words)
    print(
        f"workers rouge1 {rows} rows x {words} words: in process {t['in_process']:.3f}s, workers: 2 "
        f"{t['workers']:.3f}s, ratio {t['in_process'] / t['workers']:.2f}x (same scores)"
    )


if __name__ == "__main__":
    main()
