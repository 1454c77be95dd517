"""rewardkit: rewards, callbacks and training runs for TRL, found through a pluggy registry."""

from __future__ import annotations

from typing import Any

from .compose import Composed, compose
from .errors import (AmbiguousNameError, ConfigError, DataError, ExpressionError, RewardError, RewardkitError,
                     UnknownNameError)
from .hookspecs import hookimpl
from .rewards.base import Reward, RewardParams

__version__ = "0.1.0"
__all__ = ["AmbiguousNameError", "Composed", "ConfigError", "DataError", "ExpressionError", "Reward",
           "RewardError", "RewardParams", "RewardkitError", "UnknownNameError", "compose", "get_callback",
           "get_reward", "get_tokenizer", "hookimpl", "list_callbacks", "list_rewards", "list_views"]


def _build(kind: str, name: str, params: dict) -> Any:
    from .plugins import get_registry
    from .rewards.base import validate_params

    entry = get_registry().get(kind, name)
    factory = entry.load()
    if kind == "rewards" and not isinstance(factory, type):
        from .rewards.function_rewards import FunctionReward

        return FunctionReward(factory, **params)  # a plain TRL-style function
    if entry.params is not None and not (isinstance(factory, type) and issubclass(factory, Reward)):
        params = validate_params(entry.params, params, f"{kind[:-1]} {name!r}").model_dump(exclude_unset=True)
    return factory(**params)


def get_reward(name: str, /, **params: Any) -> Reward:
    """A reward instance by registered name, e.g. get_reward("math_exact_match", reference="solution")."""
    return _build("rewards", name, params)


def get_callback(name: str, /, **params: Any) -> Any:
    """A trainer callback instance by registered name."""
    return _build("callbacks", name, params)


def get_tokenizer(name: str, /, **params: Any) -> Any:
    """A tokenizer (object with .tokenize(text)) by registered name."""
    return _build("tokenizers", name, params)


def _describe(kind: str) -> list[dict]:
    from .plugins import get_registry

    registry = get_registry()
    return [entry.describe() for name in registry.names(kind) for entry in registry.entries[kind][name]]


def list_rewards() -> list[dict]:
    """Name, summary, source distribution, version and parameter schema of every reward."""
    return _describe("rewards")


def list_callbacks() -> list[dict]:
    """Like list_rewards, for callbacks."""
    return _describe("callbacks")


def list_views() -> list[dict]:
    """Like list_rewards, for views."""
    return _describe("views")
