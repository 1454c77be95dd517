"""The competition example's evaluation time: its former settings (GRPO's own evaluation on, 2 completions per
generate call) against the example as it ships (checkpoint_inference generates each checkpoint's dev rows once).

    python benchmarks/bench_competition_eval.py [--steps 10] [--rounds 1] [--keep DIR]

Both runs are `rewardkit train examples/competition/grpo_qlora.yaml`, piped, side by side in this one process'
children, on the data the example ships (the plugin's 12-row sample: 8 train, 4 dev rows) with tiny random
models built from it by `rewardkit tiny --from` (a causal LM, and a BERT for the two BERTScore specs); only the
model paths, quantization (off: no CUDA), max_steps and the output folder are overridden, plus for "before"
the example's former trainer keys (trl_eval: true, per_device_eval_batch_size 2, num_generations_eval 2). The
evaluation time is the sum of the piped "evaluated in X s" lines (from the start of evaluate() to the end of
every callback's on_evaluate: generation, scoring, the best-checkpoint copy). Goal: "after" at most half of
"before" (each dev row generated once instead of once greedy + num_generations_eval times sampled, one prompt per
call). Needs the rewardkit-korean plugin.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "competition" / "grpo_qlora.yaml"
SAMPLE = ROOT / "plugins" / "rewardkit-korean" / "src" / "rewardkit_korean" / "data" / "sample.jsonl"
BEFORE = ["trl_eval=true", "trainer.per_device_eval_batch_size=2", "trainer.num_generations_eval=2"]
EVALUATED = re.compile(r"step (\d+)/\d+ evaluated in (\d+\.\d) s")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=3600
    )
    if proc.returncode != 0:
        sys.exit(f"rewardkit {' '.join(args[:2])} failed:\n{proc.stderr[-3000:]}")
    return proc


def run(name: str, root: Path, steps: int, extra: list[str]) -> tuple[list[tuple[int, float]], float]:
    """One piped training run: ([(step, evaluation seconds)], wall seconds)."""
    bert = root / "bert"
    sets = [
        f"model={root / 'lm'}",
        "quantization=null",
        f"trainer.max_steps={steps}",
        f"rewards.bertscore.model_type={bert}",
        "rewards.bertscore.num_layers=2",
        f"callbacks.best_checkpoint.spec.bertscore.model_type={bert}",
        "callbacks.best_checkpoint.spec.bertscore.num_layers=2",
        *extra,
    ]
    started = time.perf_counter()
    proc = _cli("train", str(EXAMPLE), "-o", str(root / name), *[a for s in sets for a in ("--set", s)])
    wall = time.perf_counter() - started
    evals = [(int(m.group(1)), float(m.group(2))) for m in EVALUATED.finditer(proc.stdout)]
    return evals, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="training steps of each run (eval_steps is 5)")
    parser.add_argument("--rounds", type=int, default=1, help="before/after pairs, alternating")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs here (default: a temp dir)")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_competition_eval_"))
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "lm").exists():
        _cli("tiny", str(root / "lm"), "--from", str(SAMPLE))
        _cli("tiny", str(root / "bert"), "--bert", "--from", str(SAMPLE))
    totals: dict[str, list[float]] = {"before": [], "after": []}
    for r in range(args.rounds):
        for name, extra in (("before", BEFORE), ("after", [])):
            evals, wall = run(f"{name}_{r}", root, args.steps, extra)
            seconds = sum(s for _, s in evals)
            totals[name].append(seconds)
            shown = ", ".join(f"step {step}: {s:.1f} s" for step, s in evals)
            print(
                f"{name:6s} round {r}: {len(evals)} evaluations, {seconds:.1f} s evaluating ({shown}); run {wall:.0f} s"
            )
    before, after = min(totals["before"]), min(totals["after"])
    ratio = before / after if after > 0 else float("inf")
    print(f"evaluation time, best of {args.rounds}: before {before:.1f} s, after {after:.1f} s: {ratio:.2f}x faster")
    return 0 if ratio >= 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
