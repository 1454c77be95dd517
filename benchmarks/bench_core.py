"""Core benchmarks, measured side by side in one run.

1. A composed reward vs calling its component rewards directly and combining by hand (goal: <= 5 % overhead
   on 10k completions).
2. `rewardkit list` wall time vs `python -c pass` (goal: <= 1.0 s more).
3. math_exact_match on a 100,000-digit completion (goal: well under 50 ms, no error).

Run: python benchmarks/bench_core.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time

from rewardkit import compose, get_reward


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_compose(n: int, repeat: int) -> dict:
    rng = random.Random(0)
    completions = [
        f"Let me think. {rng.randint(0, 99)} + {rng.randint(0, 99)} = \\boxed{{{rng.randint(0, 200)}}}"
        + " filler" * rng.randint(0, 20)
        for _ in range(n)
    ]
    answers = [str(rng.randint(0, 200)) for _ in range(n)]
    spec = {
        "rewards": {
            "acc": {"use": "math_exact_match"},
            "fmt": {"use": "format_regex", "pattern": r"\\boxed\{[^{}]+\}"},
            "short": {"use": "brevity", "max_length": 200},
        },
        "combine": "(2*acc + fmt + short) / 4",
    }
    composed = compose(spec)
    funcs, weights = composed.to_trl()
    kwargs = {"prompts": ["p"] * n, "completions": completions, "answer": answers}

    def direct():
        parts = [f(**kwargs) for f in funcs]
        return [sum(w * (p[i] or 0.0) for w, p in zip(weights, parts)) for i in range(n)]

    assert composed(**kwargs) == direct(), "composed and direct totals differ"
    t_direct = best_of(direct, repeat)
    t_composed = best_of(lambda: composed(**kwargs), repeat)
    return {"n": n, "direct_s": t_direct, "composed_s": t_composed, "overhead": t_composed / t_direct - 1}


def bench_list(repeat: int) -> dict:
    def run(args):
        return best_of(lambda: subprocess.run(args, check=True, capture_output=True), repeat)

    t_pass = run([sys.executable, "-c", "pass"])
    t_list = run([sys.executable, "-m", "rewardkit", "list"])
    return {"python_pass_s": t_pass, "rewardkit_list_s": t_list, "extra_s": t_list - t_pass}


def bench_huge_number(repeat: int) -> dict:
    reward = get_reward("math_exact_match")
    big = "7" * 100_000
    kwargs = {"completions": [f"The answer is {big}."], "answer": [big]}
    assert reward(**kwargs) == [1.0]
    return {"digits": 100_000, "seconds": best_of(lambda: reward(**kwargs), repeat)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, repeat = (2_000, 3) if args.quick else (10_000, 7)
    c = bench_compose(n, repeat)
    lst = bench_list(3 if args.quick else 5)
    h = bench_huge_number(repeat)
    print(f"{'benchmark':<44}{'measured':>14}{'baseline':>14}{'ratio/extra':>14}{'goal':>12}")
    print(
        f"{'composed reward, ' + str(c['n']) + ' completions':<44}{c['composed_s']:>13.4f}s{c['direct_s']:>13.4f}s"
        f"{c['overhead']:>+13.1%} {'<= +5%':>11}"
    )
    print(
        f"{'rewardkit list vs python -c pass':<44}{lst['rewardkit_list_s']:>13.3f}s{lst['python_pass_s']:>13.3f}s"
        f"{lst['extra_s']:>+12.3f}s {'<= 1.0s':>11}"
    )
    print(
        f"{'math_exact_match, 100k-digit completion':<44}{h['seconds'] * 1000:>12.2f}ms{'':>14}{'':>14}{'< 50ms':>12}"
    )
    print(
        f"composed overhead {c['overhead']:+.2%}; list extra {lst['extra_s']:.3f}s; huge number "
        f"{h['seconds'] * 1000:.2f}ms",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
