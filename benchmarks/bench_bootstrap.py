"""The paired bootstrap of `rewardkit select`: 10 checkpoints x 500 rows x 1000 resamples, goal < 1 s.

    python benchmarks/bench_bootstrap.py            # the goal's size, the official-like 3-component corpus rule
    python benchmarks/bench_bootstrap.py --quick    # 100 resamples

Compares the vectorised bootstrap (rewardkit.selection.stats) with the same bootstrap written as a Python loop
over resamples (the corpus rule applied to each resample's component means), on the same seeded draws, and
checks that both give the same numbers. Times are the best of 3 wall-clock runs.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rewardkit import compose  # noqa: E402
from rewardkit.selection.checkpoints import CheckpointScore  # noqa: E402
from rewardkit.selection.stats import bootstrap_scores, paired_bootstrap, resample_counts  # noqa: E402

SPEC = {
    "rewards": {
        "em": {"use": "exact_match"},
        "rouge": {"use": "brevity", "max_length": 10},
        "bert": {"use": "brevity", "max_length": 20},
    },
    "combine": "(em + (rouge + bert) / 2) / 2",
}


def checkpoints(n_ckpt: int, n_rows: int) -> list[CheckpointScore]:
    rng = random.Random(0)
    out = []
    for k in range(n_ckpt):
        comps = {
            "em": [float(rng.random() < 0.3 + k / 50) for _ in range(n_rows)],
            "rouge": [rng.random() if rng.random() > 0.1 else None for _ in range(n_rows)],
            "bert": [rng.random() if rng.random() > 0.1 else None for _ in range(n_rows)],
        }
        out.append(
            CheckpointScore(
                f"step_{k}",
                f"step_{k}.json",
                k,
                None,
                n_rows,
                {},
                0.5,
                0.5,
                row_scores={"ids": [str(i) for i in range(n_rows)], "components": comps, "combined": [0.0] * n_rows},
            )
        )
    return out


def loop_bootstrap(composed, cps, resamples: int, seed: int) -> list[list]:
    counts = resample_counts(len(cps[0].row_scores["ids"]), resamples, seed)
    order = sorted(range(counts.shape[1]), key=str)
    out = []
    for c in cps:
        row = []
        for b in range(resamples):
            means = {}
            for alias, values in c.row_scores["components"].items():
                total = n = 0.0
                for k, j in enumerate(order):
                    if values[j] is not None and counts[b, k]:
                        total += counts[b, k] * values[j]
                        n += counts[b, k]
                means[alias] = total / n if n else None
            row.append(composed.combine_row(means))
        out.append(row)
    return out


def best_of(fn, repeats: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_ckpt, n_rows, resamples = 10, 500, 100 if args.quick else 1000
    composed, cps = compose(SPEC), checkpoints(n_ckpt, n_rows)
    fast_t, _ = best_of(lambda: paired_bootstrap(composed, cps, cps[-1], "corpus", resamples=resamples, seed=0))
    fast = bootstrap_scores(composed, cps, "corpus", resamples, 0)
    loop_n = max(1, resamples // 20)  # the loop is slow: time a slice and scale
    loop_t, slow = best_of(lambda: loop_bootstrap(composed, cps, loop_n, 0), repeats=1)
    loop_t *= resamples / loop_n
    worst = max(abs(fast[i, b] - slow[i][b]) for i in range(n_ckpt) for b in range(loop_n))
    print(f"{n_ckpt} checkpoints x {n_rows} rows x {resamples} resamples (3 components, corpus rule)")
    print(f"  vectorised paired_bootstrap: {fast_t:.3f} s  (goal < 1 s: {'met' if fast_t < 1 else 'MISSED'})")
    print(f"  Python loop (scaled from {loop_n} resamples): {loop_t:.1f} s  -> {loop_t / fast_t:.0f}x")
    print(f"  largest difference between the two on the shared draws: {worst:.2e}")


if __name__ == "__main__":
    main()
