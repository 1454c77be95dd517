"""Adapter for plain TRL-style reward functions registered by plugins."""

from __future__ import annotations

from typing import Any, Callable

from .base import Reward, RewardParams


class FunctionReward(Reward):
    """A plain `func(completions, **kwargs) -> list[float | None]` given the full reward contract.

    Registering a function (not a Reward class) with `register_rewards` wraps it in this class, so it gains
    chat-completion handling, views, `on_error`, `timeout` and length checks. The function must be importable
    at module level to pickle.

    Example:
    >>> from rewardkit.rewards.function_rewards import FunctionReward
    >>> def has_digit(completions, **kwargs):
    ...     return [float(any(ch.isdigit() for ch in c)) for c in completions]
    >>> FunctionReward(has_digit)(completions=[[{"role": "assistant", "content": "4"}], "four"])
    [1.0, 0.0]
    """

    name = "function"

    def __init__(self, func: Callable[..., list], params: RewardParams | None = None, /, **kwargs: object) -> None:
        self.func = func
        default_name = getattr(func, "__name__", type(func).__name__)
        if params is None:
            kwargs.setdefault("name", default_name)
        elif params.name is None:
            params = params.model_copy(update={"name": default_name})
        super().__init__(params, **kwargs)

    def score_batch(self, completions: list[str], references: Any, **context: Any) -> list[float | None]:
        return self.func(completions=completions, **context)
