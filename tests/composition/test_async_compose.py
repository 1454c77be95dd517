"""Async components stay async: composed calls await them together, and to_trl() hands TRL async callables."""

from __future__ import annotations

import asyncio
import pickle
import time

import pytest

from rewardkit import compose
from rewardkit.composition.composed import AsyncTRL
from tests.composition.async_components import CALLS, slow_a, slow_b, window

KWARGS = {"completions": ["ab", "abc", "abcd"], "answer": ["ab", "x", "abcd"]}


def spec(combine: str, **extra) -> dict:
    return {"rewards": {"a": slow_a, "b": slow_b, **extra}, "combine": combine}


@pytest.mark.parametrize("combine", ["a + b", "a * b"], ids=["linear", "product"])
def test_two_half_second_async_components_take_under_0_7_s(combine):
    composed = compose(spec(combine))
    assert composed.is_async
    start = time.monotonic()
    got = composed(**KWARGS)
    assert time.monotonic() - start < 0.7  # concurrent: 0.5 s, not 1.0 s
    expected = [1.0 + 2.0, 2.0 + 3.0, 1.0 + 2.0] if combine == "a + b" else [2.0, 6.0, 2.0]
    assert got == expected
    start = time.monotonic()
    assert asyncio.run(composed.acall(**KWARGS)) == expected
    assert time.monotonic() - start < 0.7


def test_sync_components_run_beside_the_async_ones_with_the_same_numbers():
    composed = compose(spec("a * b + em", em={"use": "exact_match", "reference": "answer"}))
    assert composed(**KWARGS) == [3.0, 6.0, 3.0]
    assert asyncio.run(composed.acall(**KWARGS)) == [3.0, 6.0, 3.0]
    assert composed.score_components(**KWARGS)["em"] == [1.0, 0.0, 1.0]


def test_to_trl_hands_trl_async_callables_that_pickle_and_keep_their_names():
    from trl.trainer.utils import get_callable_name, is_async_callable

    funcs, weights = compose(spec("2*a + b + 0.5*em", em={"use": "exact_match", "reference": "answer"})).to_trl()
    assert [get_callable_name(f) for f in funcs] == ["a", "b", "em"] and weights == [2.0, 1.0, 0.5]
    assert [is_async_callable(f) for f in funcs] == [True, True, False]
    for f in funcs[:2]:
        clone = pickle.loads(pickle.dumps(f))
        assert isinstance(clone, AsyncTRL) and clone.__name__ == f.__name__ and is_async_callable(clone)
        assert asyncio.run(clone(**KWARGS)) == asyncio.run(f(**KWARGS))
    (whole,), (weight,) = compose(spec("a * b"), name="ab").to_trl()
    assert is_async_callable(whole) and get_callable_name(whole) == "ab" and weight == 1.0
    assert asyncio.run(pickle.loads(pickle.dumps(whole))(**KWARGS)) == [2.0, 6.0, 2.0]
    (sync,), _ = compose({"rewards": {"em": "exact_match"}, "combine": "em * em"}).to_trl()
    assert not is_async_callable(sync)


def test_trl_style_gather_of_the_handed_callables_is_concurrent():
    funcs, _ = compose(spec("a + b")).to_trl()
    CALLS.clear()

    async def gather():  # what GRPOTrainer._calculate_rewards does with async reward functions
        return await asyncio.gather(*(f(**KWARGS) for f in funcs))

    asyncio.run(gather())
    assert window() < 0.7


class SlowJudge:
    """A plugin's TRL-style reward class with an async __call__ (built as factory(**params))."""

    __name__ = "slow_judge"

    def __init__(self, delay: float = 0.5) -> None:
        self.delay = delay

    async def __call__(self, completions, **kwargs):
        await asyncio.sleep(self.delay)
        return [0.5 for _ in completions]


def test_a_plugins_async_rewards_stay_async():
    from rewardkit.core.hookspecs import hookimpl
    from rewardkit.core.plugins import register_plugin, unregister_plugin

    class AsyncPlugin:
        @hookimpl
        def register_rewards(self, register):
            register("slow_a_plugin", slow_a)
            register("slow_judge", SlowJudge)

    register_plugin(AsyncPlugin(), name="async-plugin")
    try:
        composed = compose({"rewards": {"a": "slow_a_plugin", "j": {"use": "slow_judge", "delay": 0.5}}})
        assert composed.is_async and all(r.is_async for r in composed.components.values())
        start = time.monotonic()
        assert composed(completions=["ab"]) == [1.0 + 0.5]
        assert time.monotonic() - start < 0.7
    finally:
        unregister_plugin("async-plugin")
