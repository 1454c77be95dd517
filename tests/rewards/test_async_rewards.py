"""Async rewards: `ascore_batch` in a subclass, `acall` with `__call__`'s checks, `__call__` still synchronous."""

from __future__ import annotations

import asyncio
import pickle
import threading
import time

import pytest

from rewardkit import DataError, Reward, RewardError, RewardParams, get_reward, get_view
from rewardkit.rewards.function_rewards import FunctionReward


class SlowLength(Reward):
    """Length of the completion after `delay` seconds of awaiting (an HTTP call's stand-in); 'boom' raises."""

    name = "slow_length"
    needs_reference = False

    class Params(RewardParams):
        delay: float = 0.5

    async def ascore_batch(self, completions, references, **context):
        await asyncio.sleep(self.params.delay)
        if any("boom" in c for c in completions):
            raise ValueError("exploded")
        return [None if c == "none" else float(len(c)) for c in completions]


class WrongLength(Reward):
    name = "wrong_length"

    async def ascore_batch(self, completions, references, **context):
        return [1.0]


async def async_len(completions, **kwargs):
    await asyncio.sleep(0.5)
    return [float(len(c)) for c in completions]


def test_a_subclass_with_ascore_batch_is_async_and_called_synchronously():
    reward = SlowLength(delay=0.01)
    assert reward.is_async and not get_reward("exact_match").is_async
    assert reward(completions=["ab", [{"role": "assistant", "content": "abc"}]]) == [2.0, 3.0]
    assert asyncio.run(reward.acall(completions=["ab"])) == [2.0]


def test_acall_has_the_same_views_none_reasons_and_policies_as_call():
    kwargs = {"completions": ["\\boxed{12}", "no box", "none", "\\boxed{boom}"]}
    for on_error in ("none", "zero"):
        reward = SlowLength(delay=0.01, completion_view=get_view("boxed"), missing="none", on_error=on_error)
        sync = reward(**kwargs)
        sync_reasons = reward.none_reasons
        assert asyncio.run(reward.acall(**kwargs)) == sync
        assert reward.none_reasons == sync_reasons
    assert sync == [2.0, None, None, 0.0]
    assert reward.none_reasons == {"view missed": 2}
    none_policy = SlowLength(delay=0.01, completion_view=get_view("boxed"), on_error="none")
    none_policy(**kwargs)
    assert none_policy.none_reasons == {"error": 1} and none_policy.error_count == 1
    with pytest.raises(RewardError, match=r"'slow_length' failed on completion 3 .*exploded"):
        asyncio.run(SlowLength(delay=0.01).acall(**kwargs))
    with pytest.raises(RewardError, match="returned 1 scores for 2 completions"):
        asyncio.run(WrongLength().acall(completions=["a", "b"]))
    with pytest.raises(DataError, match="without completions"):
        asyncio.run(SlowLength().acall())


def test_timeout_bounds_an_async_reward_in_process():
    reward = SlowLength(delay=30, timeout=0.2)
    logged = {}
    start = time.monotonic()
    with pytest.warns(RuntimeWarning, match="exceeded its 0.2s budget"):
        assert reward(completions=["a", "b"], log_metric=logged.__setitem__) == [None, None]
    assert time.monotonic() - start < 5
    assert reward.none_reasons == {"timeout": 2} and logged == {"rewardkit/slow_length/timeouts": 1.0}


def test_call_works_when_the_callers_thread_runs_an_event_loop():
    async def inside_a_loop():
        return SlowLength(delay=0.01)(completions=["abc"]), FunctionReward(async_len)(completions=["ab"])

    assert asyncio.run(inside_a_loop()) == ([3.0], [2.0])


def test_two_async_rewards_awaited_together_take_one_delay():
    a, b = SlowLength(delay=0.5), FunctionReward(async_len)
    assert b.is_async

    async def both():
        return await asyncio.gather(a.acall(completions=["ab"]), b.acall(completions=["abc"]))

    start = time.monotonic()
    assert asyncio.run(both()) == [[2.0], [3.0]]
    assert time.monotonic() - start < 0.7  # concurrent: 0.5 s, not 1.0 s


def test_sync_calls_from_eight_threads_run_concurrently_and_get_their_own_scores():
    reward = SlowLength(delay=0.3)
    results: dict[int, list] = {}

    def call(t: int) -> None:
        results[t] = reward(completions=["x" * t, "y" * (t + 1)])

    threads = [threading.Thread(target=call, args=(t,)) for t in range(8)]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert results == {t: [float(t) or 0.0, float(t + 1)] for t in range(8)}
    assert time.monotonic() - start < 2.4  # the shared loop runs them together, not 8 x 0.3 s


def test_async_rewards_pickle_and_refuse_workers():
    reward = SlowLength(delay=0.01, name="judge")
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.is_async and clone.__name__ == "judge" and clone(completions=["ab"]) == [2.0]
    fn = pickle.loads(pickle.dumps(FunctionReward(async_len)))
    assert fn.is_async and fn.__name__ == "async_len"
    with pytest.raises(Exception, match="workers: splits a batch"):
        SlowLength(workers=2)
