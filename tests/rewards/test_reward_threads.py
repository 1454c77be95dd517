"""One reward called from 8 threads at once: every caller gets its own scores, and per-call state stays whole."""

from __future__ import annotations

import threading
import time

import pytest

from rewardkit.rewards.function_rewards import FunctionReward


def tagged(completions, **kwargs):
    """Each completion's own number back (a result from another call would show)."""
    return [float(c.split(":")[1]) for c in completions]


def fails_on_x(completions, **kwargs):
    time.sleep(0.002)  # long enough for the 8 threads' calls to overlap
    if any("x" in c for c in completions):
        raise ValueError("x")
    return [1.0] * len(completions)


def hammer(call, threads: int = 8, calls: int = 25) -> list:
    problems: list = []

    def run(t: int) -> None:
        for k in range(calls):
            try:
                problems.extend(call(t, k))
            except Exception as exc:  # an UnpicklingError or EOFError from a shared pipe shows here
                problems.append((t, k, f"{type(exc).__name__}: {exc}"))

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert not any(w.is_alive() for w in workers)
    return problems


@pytest.mark.parametrize("workers", [None, 3])
def test_a_timeout_reward_gives_each_of_8_threads_its_own_results(workers):
    reward = FunctionReward(tagged, timeout=30, workers=workers)

    def call(t: int, k: int) -> list:
        texts = [f"r:{t * 1000 + k * 10 + j}" for j in range(1 + (t + k) % 5)]
        got = reward(completions=texts)
        want = [float(s.split(":")[1]) for s in texts]
        return [] if got == want else [(t, k, got, want)]

    assert hammer(call) == []


def test_per_call_state_is_never_a_mix_of_calls():
    reward = FunctionReward(fails_on_x, on_error="none")
    seen: list[dict] = []

    def call(t: int, k: int) -> list:
        texts = ["ok"] * 3 + ["x"] * t  # thread t's calls have t failing rows
        out = reward(completions=texts)
        seen.append(reward.none_reasons)
        return [] if out == [1.0] * 3 + [None] * t else [(t, k, out)]

    assert hammer(call) == []
    assert all(r == {} or set(r) == {"error"} and 1 <= r["error"] <= 7 for r in seen), seen
    assert reward.error_count == 25 * sum(range(8))  # every failing row counted once, none lost between threads
