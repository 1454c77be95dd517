"""Plain Python reward functions (registered by plugins, or given inline) with the full reward contract."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from rewardkit.core.aio import run_sync
from rewardkit.core.errors import ConfigError
from rewardkit.rewards.base import Reward, RewardParams
from rewardkit.rewards.inputs import Reference

HINT = "def my_reward(completions, **kwargs): return [float(...) for c in completions]"


def _signature_problem(func: Callable) -> str | None:
    """Why TRL's keyword call `func(prompts=..., completions=..., <columns>=...)` cannot work, or None."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature: the call itself will tell
        return None
    params = sig.parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        return "does not accept **kwargs (TRL passes prompts, completion_ids and every dataset column)"
    required = [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,)]
    if required:
        return f"has positional-only parameters {required}; TRL calls rewards by keyword"
    return None


def _name(func: Callable) -> str:
    """The name TRL would log for `func` (partials unwrapped, an instance's class name)."""
    target = func.func if isinstance(func, functools.partial) else func
    return getattr(target, "__name__", type(target).__name__)


def _is_async(func: Callable) -> bool:
    target = func.func if isinstance(func, functools.partial) else func
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(getattr(target, "__call__", None))  # noqa: B004 (an instance's async __call__)


class FunctionReward(Reward):
    """A plain `func(completions, **kwargs) -> list[float | None]` given the full reward contract.

    Registering a function (not a Reward class) with `register_rewards`, or giving a callable (function,
    callable instance, functools.partial, async function) in a compose spec, wraps it in this class, so it gains
    chat-completion handling, views, None and `on_error` policies, `timeout` (when it pickles) and length checks.
    Its TRL-logged name is the spec's alias, else the function's name.

    Example:
    >>> from rewardkit.rewards.function_rewards import FunctionReward
    >>> def has_digit(completions, **kwargs):
    ...     return [float(any(ch.isdigit() for ch in c)) for c in completions]
    >>> FunctionReward(has_digit)(completions=[[{"role": "assistant", "content": "4"}], "four"])
    [1.0, 0.0]
    """

    name = "function"

    def __init__(self, func: Callable[..., list], params: RewardParams | None = None, /, **kwargs: object) -> None:
        if not callable(func) or isinstance(func, type):
            raise ConfigError(
                f"reward {func!r:.60}: expected a function or a callable instance, got "
                f"{'a class' if isinstance(func, type) else type(func).__name__}.",
                hint=HINT,
            )
        why = _signature_problem(func)
        if why is not None:
            raise ConfigError(f"reward {_name(func)!r}: {why}.", hint=HINT)
        self.func = func
        self._func_is_async = _is_async(func)
        default_name = _name(func)
        if params is None:
            kwargs.setdefault("name", default_name)
        elif params.name is None:
            params = params.model_copy(update={"name": default_name})
        super().__init__(params, **kwargs)

    @property
    def is_async(self) -> bool:
        """Whether the function is async: then `acall` awaits it and TRL gathers it with the other async rewards."""
        return self._func_is_async

    def score_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        result = self.func(completions=completions, **context)
        return run_sync(result) if inspect.isawaitable(result) else result

    async def ascore_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        result = self.func(completions=completions, **context)
        return await result if inspect.isawaitable(result) else result
