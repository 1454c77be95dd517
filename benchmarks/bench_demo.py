"""The full offline demo, measured: held-out (test) exact match of the SFT start and of the selected GRPO
checkpoint, the gain in points, and the wall time.

    python benchmarks/bench_demo.py                 # seed 0, the default demo (what `rewardkit demo` runs)
    python benchmarks/bench_demo.py --seeds 0 1 2   # the same run for other seeds (data split, init, sampling)

Exits 1 when a seed's gain is below --min-gain points (default 15). The test problems are never used for
training or for choosing the checkpoint (that is the validation set), so the gain is not a selection artefact.
Wall time is machine- and load-dependent; torch runs on one thread (the demo sets it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=None, help="GRPO steps (default: the demo's)")
    parser.add_argument("--output", type=Path, default=None, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--min-gain", type=float, default=15.0, help="points the gain must reach")
    args = parser.parse_args(argv)

    from rewardkit.cli.demo import run

    root = args.output or Path(tempfile.mkdtemp(prefix="bench_demo_"))
    rows = []
    for seed in args.seeds:
        print(f"--- seed {seed} ---", flush=True)
        r = run(root / f"seed_{seed}", steps=args.steps, seed=seed, say=lambda line: print(line, flush=True))
        gain = 100 * (r.best_test_em - r.sft_test_em)
        rows.append(
            (seed, r.sft_test_em, r.best_test_em, gain, r.sft_val_em, r.best_val_em, r.best_step, r.wall_time_s)
        )
    print(
        f"\n{'seed':>4} {'SFT test':>9} {'GRPO test':>10} {'gain':>7} {'SFT val':>8} {'GRPO val':>9} "
        f"{'step':>5} {'wall s':>7}"
    )
    for seed, st, bt, gain, sv, bv, step, wall in rows:
        print(
            f"{seed:>4} {100 * st:>8.1f}% {100 * bt:>9.1f}% {gain:>+6.1f} {100 * sv:>7.1f}% {100 * bv:>8.1f}% "
            f"{step:>5} {wall:>7.1f}"
        )
    failed = [row[0] for row in rows if row[3] < args.min_gain]
    print(f"runs in {root}")
    if failed:
        print(f"FAIL: gain below {args.min_gain} points for seeds {failed}")
        return 1
    print(f"OK: every seed gained at least {args.min_gain} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
