"""rewardkit's math_verify against TRL's accuracy_reward, side by side on a GRPO-shaped batch.

    python benchmarks/bench_math.py            # 64 prompts x G=8 completions, two pathological items
    python benchmarks/bench_math.py --quick    # 8 prompts x G=4

Both rewards are called as GRPOTrainer calls them (keywords: prompts, chat completions, completion_ids, the
`solution` column repeated G times, trainer_state, log_extra, log_metric). Printed: the wall time of the whole
batch (main thread, rounds interleaved, minimum), the cost of the two pathological items alone, agreement on the
other rows, and the same batch called from a thread. TRL's function turns math-verify's time limits off outside
the main thread, so from a thread its pathological item has no bound: that measurement runs in a child process
that is killed after `--cap` seconds. rewardkit's start-up (spawning its workers, importing math-verify there)
happens once per process and is printed apart. On a machine shared with other work the wall times swing: read
the ratio of one run, and the load average printed with it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable

# MATH-style golds (as datasets hold them: bare LaTeX, $...$, \boxed{}, numbers), each with a right and a wrong
# answer; `k` makes every prompt's gold its own, as in a real batch (no verdict is reused across prompts or rounds).
FORMS: list[Callable[[int], tuple[str, str, str]]] = [
    lambda k: (rf"\frac{{{k}}}{{{k + 1}}}", rf"\frac{{{2 * k}}}{{{2 * k + 2}}}", rf"\frac{{{k + 1}}}{{{k}}}"),
    lambda k: (rf"$\frac{{\sqrt{{2}}}}{{{k}}}$", rf"\frac{{2}}{{{k}\sqrt{{2}}}}", rf"\frac{{\sqrt{{3}}}}{{{k}}}"),
    lambda k: (rf"\boxed{{(x+{k})^2}}", rf"x^2+{2 * k}x+{k * k}", rf"x^2+{k * k}"),
    lambda k: (rf"$\{{{k},{k + 1}\}}$", rf"\{{{k + 1},{k}\}}", rf"\{{{k},{k + 2}\}}"),
    lambda k: (str(7 * k), str(7 * k), str(7 * k + 1)),
    lambda k: (rf"$(0,{k}]$", rf"(0, {k}]", rf"[0,{k}]"),
    lambda k: (str(-k), str(-k), str(k)),
    lambda k: (rf"\boxed{{{k}\sqrt{{3}}}}", rf"\sqrt{{{3 * k * k}}}", rf"{k}\sqrt{{2}}"),
    lambda k: (
        rf"$\begin{{pmatrix}} {k} \\ -1 \end{{pmatrix}}$",
        rf"\begin{{pmatrix}} {k} \\ -1 \end{{pmatrix}}",
        rf"\begin{{pmatrix}} -1 \\ {k} \end{{pmatrix}}",
    ),
    lambda k: (rf"$y = -\frac{{1}}{{2}}x + {k}$", rf"y = {k} - \frac{{x}}{{2}}", rf"y = -2x + {k}"),
    lambda k: (f"{k}.25", rf"\frac{{{4 * k + 1}}}{{4}}", f"{k}.52"),
    lambda k: (rf"$\frac{{{k}}}{{400}}$", f"{k / 400:.4f}", rf"\frac{{{k}}}{{40}}"),
    lambda k: (rf"\boxed{{{k}^{{1/3}}}}", rf"\sqrt[3]{{{k}}}", rf"{k}^{{1/2}}"),
    lambda k: (rf"$(-\infty, {k})$", rf"(-\infty,{k})", rf"(-\infty, {k}]"),
    lambda k: (f"{1000 + k:,}", str(1000 + k), str(1001 + k)),
    lambda k: (rf"${k}\pi$", rf"{k} \pi", rf"{k + 1}\pi"),
]
SLOW = r"\boxed{2^{2^{2^{2^{2^{2}}}}} - 2^{2^{2^{2^{2^{2}}}}}}"  # math-verify spends its whole budget on it
WORDS = "we let the sum of both sides so then hence divide multiply term square root factor value check".split()


def reasoning(rng: random.Random) -> str:
    """A different made-up derivation each time: no two completions share their text by accident."""
    steps = [
        f"{' '.join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))} ${rng.randint(2, 99)} + {rng.randint(2, 9)}x$."
        for _ in range(rng.randint(2, 6))
    ]
    return " ".join(steps) + " "


def grpo_batch(prompts: int, generations: int, seed: int = 0) -> tuple[list[str], list[str], list[int]]:
    """(completions, golds repeated G times, indices of the two pathological items).

    Each group of G answers its prompt the way a small policy does: mostly the right value (in the gold's form or
    an equivalent one), some wrong, some without a final answer, now and then the same text sampled twice.
    """
    rng = random.Random(seed)
    completions, golds = [], []
    for p in range(prompts):
        gold, right, wrong = FORMS[p % len(FORMS)](2 + p + 1000 * seed)
        group: list[str] = []
        for _ in range(generations):
            pick = rng.random()
            if group and pick < 0.1:
                group.append(rng.choice(group))  # sampled twice
            elif pick < 0.55:
                group.append(f"{reasoning(rng)}The final answer is $\\boxed{{{right}}}$.")
            elif pick < 0.85:
                group.append(f"{reasoning(rng)}So the answer is \\boxed{{{wrong}}}.")
            else:
                group.append(f"{reasoning(rng)}I am not sure.")  # no final answer
        completions += group
        golds += [gold] * generations
    slow = [len(completions) // 3, 2 * len(completions) // 3]
    for i in slow:
        completions[i] = f"{reasoning(rng)}Therefore {SLOW}"
        golds[i] = "0"
    return completions, golds, slow


def trl_kwargs(completions: list[str], golds: list[str]) -> dict[str, Any]:
    """What GRPOTrainer._calculate_rewards passes a reward function for a conversational dataset."""
    return {
        "prompts": [[{"role": "user", "content": "Solve."}] for _ in completions],
        "completions": [[{"role": "assistant", "content": c}] for c in completions],
        "completion_ids": [[0] * len(c) for c in completions],
        "solution": golds,
        "trainer_state": None,
        "log_extra": lambda column, values: None,
        "log_metric": lambda name, value: None,
    }


def cpu_seconds() -> float:
    """CPU time of this process and of its live child processes (rewardkit's workers), from /proc (Linux)."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{os.getpid()}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in children:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def in_thread(fn: Callable[[], Any]) -> tuple[float, Any]:
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(zip(("seconds", "out"), timed(fn))))
    thread.start()
    thread.join()
    return box["seconds"], box["out"]


def _trl_in_a_thread(completions: list[str], golds: list[str], conn: Any) -> None:
    """Child process: TRL's accuracy_reward from a thread; reports the seconds it took, if it ever finishes."""
    from trl.rewards import accuracy_reward

    seconds, _ = in_thread(lambda: accuracy_reward(**trl_kwargs(completions, golds)))
    conn.send(seconds)


def trl_thread_capped(completions: list[str], golds: list[str], cap: float) -> float | None:
    """Seconds TRL's function took from a thread, or None when it was still running after `cap` (then killed)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_trl_in_a_thread, args=(completions, golds, child))
    proc.start()
    # The child's imports (trl, math-verify) take seconds: the cap counts from its start.
    seconds = parent.recv() if parent.poll(cap) else None
    if proc.is_alive():
        proc.kill()
    proc.join()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 prompts x 4 completions, one round")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the whole batch")
    parser.add_argument("--cap", type=float, default=60.0, help="seconds TRL's function may run in a thread")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    warnings.simplefilter("ignore")  # the deadline warnings of the pathological items
    from trl.rewards import accuracy_reward

    from rewardkit import get_reward

    prompts, generations = (8, 4) if args.quick else (64, 8)
    completions, golds, slow = grpo_batch(prompts, generations)
    kwargs = trl_kwargs(completions, golds)
    rounds = 1 if args.quick else args.rounds
    # Each round scores a batch of its own (other golds and answers): nothing either side cached helps the next.
    batches = [trl_kwargs(*grpo_batch(prompts, generations, seed=r)[:2]) for r in range(1, rounds)]
    ours = get_reward("math_verify", reference="solution")  # timeout 5 s, 2 workers: the defaults
    startup, _ = timed(lambda: ours(**trl_kwargs(completions[:4], golds[:4])))
    accuracy_reward(**trl_kwargs(completions[:4], golds[:4]))  # imports and math-verify's first parse
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {cores} cores, load average {os.getloadavg()[0]:.1f} (1 min) at the start")
    print(f"batch: {prompts} prompts x {generations} completions = {len(completions)} rows, 2 pathological")
    print(f"rewardkit start-up (2 workers spawned, math-verify imported there), once per process: {startup:.2f} s")

    t_trl, t_ours, c_trl, c_ours = [], [], [], []
    for batch in [*batches, kwargs]:  # the last round is the batch compared row by row below
        cpu = cpu_seconds()
        seconds, theirs = timed(lambda batch=batch: accuracy_reward(**batch))
        t_trl.append(seconds)
        c_trl.append(cpu_seconds() - cpu)
        cpu = cpu_seconds()
        seconds, mine = timed(lambda batch=batch: ours(**batch))
        t_ours.append(seconds)
        c_ours.append(cpu_seconds() - cpu)
    print(
        f"CPU seconds for the batch (all processes, min of the rounds; the load does not inflate these): TRL "
        f"{min(c_trl):.2f}, rewardkit {min(c_ours):.2f} (its parent and 2 workers)"
    )
    rest = [i for i in range(len(completions)) if i not in slow]
    agree = sum(theirs[i] == mine[i] for i in rest)
    print(
        f"whole batch, main thread: TRL accuracy_reward {min(t_trl):.2f} s, rewardkit math_verify {min(t_ours):.2f} s"
        f" -> {min(t_trl) / min(t_ours):.2f}x (min of {rounds} interleaved rounds)"
    )
    print(
        f"agreement on the {len(rest)} other rows: {agree} of {len(rest)}"
        f" (right answers: TRL {sum(theirs[i] == 1.0 for i in rest)}, rewardkit {sum(mine[i] == 1.0 for i in rest)})"
    )
    print(f"pathological rows score: TRL {[theirs[i] for i in slow]}, rewardkit {[mine[i] for i in slow]}")

    pair = trl_kwargs([completions[i] for i in slow], ["0", "0"])
    p_trl, _ = timed(lambda: accuracy_reward(**pair))
    p_ours, _ = timed(lambda: ours(**pair))
    print(
        f"the two pathological items alone, main thread: TRL {p_trl:.2f} s (math-verify's 5 s alarm, one after"
        f" the other), rewardkit {p_ours:.2f} s (each stopped at 90% of its 5 s deadline by its worker, side by side on 2 workers)"
    )

    fresh = trl_kwargs(*grpo_batch(prompts, generations, seed=rounds)[:2])  # a batch not scored before
    th_ours, th_mine = in_thread(lambda: ours(**fresh))
    same = th_mine == ours(**fresh)
    print(f"a fresh batch from a thread: rewardkit {th_ours:.2f} s, same scores from the main thread: {same}")
    th_pair, _ = in_thread(lambda: ours(**pair))
    capped = trl_thread_capped([completions[i] for i in slow], ["0", "0"], args.cap)
    shown = f"{capped:.2f} s" if capped is not None else f"not finished after {args.cap:.0f} s (killed)"
    print(f"the two pathological items from a thread: rewardkit {th_pair:.2f} s, TRL {shown} (no time limit there)")
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) at the end")
    if args.json:
        numbers = {
            "rows": len(completions), "trl_s": min(t_trl), "rewardkit_s": min(t_ours),
            "ratio": min(t_trl) / min(t_ours), "cpu_trl_s": min(c_trl), "cpu_rewardkit_s": min(c_ours), "agree": agree, "compared": len(rest), "pathological_trl_s": p_trl,
            "pathological_rewardkit_s": p_ours, "thread_rewardkit_s": th_ours, "thread_pathological_rewardkit_s": th_pair,
            "thread_pathological_trl_s": capped, "startup_s": startup,
        }  # fmt: skip
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")


if __name__ == "__main__":
    main()
