"""rewardkit: rewards, callbacks and training runs for TRL, found through a pluggy registry.

Everything a plugin needs is importable from here: `hookimpl`, `Register`, `Reward`, `RewardParams`,
`Params`, `ViewSpec`, `TokenizerSpec`, `ModelRef`, `Reference`, `validate` and the error types. Names load on first use
(PEP 562), so `python -m rewardkit` and console scripts reach their signal handling before any import work.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "api": ["build", "compose", "get_callback", "get_generator", "get_preset", "get_reward", "get_tokenizer",
            "get_view", "list_callbacks", "list_generators", "list_presets", "list_rewards", "list_tokenizers",
            "list_views", "load_compose_spec", "load_spec"],
    "callbacks": ["link_callbacks"],
    "composition": ["ComposeSpec", "Composed"],
    "errors": ["AmbiguousNameError", "ConfigError", "DataError", "ExpressionError", "RewardError", "RewardkitError",
               "UnknownNameError"],
    "hookspecs": ["Register", "hookimpl"],
    "rewards": ["ExactMatch"],
    "rewards.base": ["Reference", "Reward", "RewardParams", "reference_options"],
    "validation": ["ModelRef", "Params", "RegexSeconds", "Seconds", "TokenizerSpec", "ViewSpec", "validate"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'rewardkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rewardkit.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .api import (build, compose, get_callback, get_generator, get_preset, get_reward, get_tokenizer,
                      get_view, list_callbacks, list_generators, list_presets, list_rewards, list_tokenizers,
                      list_views, load_compose_spec, load_spec)
    from .callbacks import link_callbacks
    from .composition import ComposeSpec, Composed
    from .errors import (AmbiguousNameError, ConfigError, DataError, ExpressionError, RewardError,
                         RewardkitError, UnknownNameError)
    from .hookspecs import Register, hookimpl
    from .rewards import ExactMatch
    from .rewards.base import Reference, Reward, RewardParams, reference_options
    from .validation import ModelRef, Params, RegexSeconds, Seconds, TokenizerSpec, ViewSpec, validate
