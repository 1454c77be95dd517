"""rewardkit: rewards, callbacks and training runs for TRL, found through a pluggy registry.

Everything a plugin needs is importable from here: `hookimpl`, `Register`, the bases it subclasses (`Reward`,
`View`, `Tokenizer`) and their parameter models (`RewardParams`, `Params`, `ViewSpec`, `TokenizerSpec`),
`ModelRef`, `Reference`, `validate`, `read_text` (bounded, strict UTF-8) and the error types. Names load on first use
(PEP 562), so `python -m rewardkit` and console scripts reach their signal handling before any import work.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "api": [
        "build",
        "compose",
        "get_callback",
        "get_generator",
        "get_preset",
        "get_reward",
        "get_tokenizer",
        "get_view",
        "list_callbacks",
        "list_generators",
        "list_presets",
        "list_rewards",
        "list_tokenizers",
        "list_views",
        "load_compose_spec",
        "load_spec",
    ],
    "callbacks": ["link_callbacks"],
    "composition.composed": ["Composed"],
    "composition.spec": ["ComposeSpec"],
    "core.errors": [
        "AmbiguousNameError",
        "ConfigError",
        "DataError",
        "ExpressionError",
        "RewardError",
        "RewardkitError",
        "UnknownNameError",
    ],
    "core.reading": ["read_text"],
    "core.hookspecs": ["Register", "hookimpl"],
    "core.validation": ["ModelRef", "Params", "RegexSeconds", "Seconds", "TokenizerSpec", "ViewSpec", "validate"],
    "rewards": ["ExactMatch"],
    "rewards.base": ["Reward", "RewardParams", "reference_options"],
    "rewards.inputs": ["Reference"],
    "text.text_tokenizers": ["Tokenizer"],
    "text.views": ["View"],
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


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs: the same names, statically
    from rewardkit.api import build as build
    from rewardkit.api import compose as compose
    from rewardkit.api import get_callback as get_callback
    from rewardkit.api import get_generator as get_generator
    from rewardkit.api import get_preset as get_preset
    from rewardkit.api import get_reward as get_reward
    from rewardkit.api import get_tokenizer as get_tokenizer
    from rewardkit.api import get_view as get_view
    from rewardkit.api import list_callbacks as list_callbacks
    from rewardkit.api import list_generators as list_generators
    from rewardkit.api import list_presets as list_presets
    from rewardkit.api import list_rewards as list_rewards
    from rewardkit.api import list_tokenizers as list_tokenizers
    from rewardkit.api import list_views as list_views
    from rewardkit.api import load_compose_spec as load_compose_spec
    from rewardkit.api import load_spec as load_spec
    from rewardkit.callbacks import link_callbacks as link_callbacks
    from rewardkit.composition.composed import Composed as Composed
    from rewardkit.composition.spec import ComposeSpec as ComposeSpec
    from rewardkit.core.errors import AmbiguousNameError as AmbiguousNameError
    from rewardkit.core.errors import ConfigError as ConfigError
    from rewardkit.core.errors import DataError as DataError
    from rewardkit.core.errors import ExpressionError as ExpressionError
    from rewardkit.core.errors import RewardError as RewardError
    from rewardkit.core.errors import RewardkitError as RewardkitError
    from rewardkit.core.errors import UnknownNameError as UnknownNameError
    from rewardkit.core.hookspecs import Register as Register
    from rewardkit.core.hookspecs import hookimpl as hookimpl
    from rewardkit.core.reading import read_text as read_text
    from rewardkit.core.validation import ModelRef as ModelRef
    from rewardkit.core.validation import Params as Params
    from rewardkit.core.validation import RegexSeconds as RegexSeconds
    from rewardkit.core.validation import Seconds as Seconds
    from rewardkit.core.validation import TokenizerSpec as TokenizerSpec
    from rewardkit.core.validation import ViewSpec as ViewSpec
    from rewardkit.core.validation import validate as validate
    from rewardkit.rewards import ExactMatch as ExactMatch
    from rewardkit.rewards.base import Reward as Reward
    from rewardkit.rewards.base import RewardParams as RewardParams
    from rewardkit.rewards.base import reference_options as reference_options
    from rewardkit.rewards.inputs import Reference as Reference
    from rewardkit.text.text_tokenizers import Tokenizer as Tokenizer
    from rewardkit.text.views import View as View
