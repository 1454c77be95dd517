"""rewardkit: rewards, callbacks and training runs for TRL, found through a pluggy registry.

Everything a plugin needs is importable from here: `hookimpl`, `Register`, the bases it subclasses (`Reward`,
`View`, `Tokenizer`) and their parameter models (`RewardParams`, `Params`, `ViewSpec`, `TokenizerSpec`),
`ModelRef`, `Reference`, `validate` and the error types. Names load on first use
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
    "text_tokenizers": ["Tokenizer"],
    "views": ["View"],
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


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs: the same names, statically
    from .api import build as build
    from .api import compose as compose
    from .api import get_callback as get_callback
    from .api import get_generator as get_generator
    from .api import get_preset as get_preset
    from .api import get_reward as get_reward
    from .api import get_tokenizer as get_tokenizer
    from .api import get_view as get_view
    from .api import list_callbacks as list_callbacks
    from .api import list_generators as list_generators
    from .api import list_presets as list_presets
    from .api import list_rewards as list_rewards
    from .api import list_tokenizers as list_tokenizers
    from .api import list_views as list_views
    from .api import load_compose_spec as load_compose_spec
    from .api import load_spec as load_spec
    from .callbacks import link_callbacks as link_callbacks
    from .composition import ComposeSpec as ComposeSpec
    from .composition import Composed as Composed
    from .errors import AmbiguousNameError as AmbiguousNameError
    from .errors import ConfigError as ConfigError
    from .errors import DataError as DataError
    from .errors import ExpressionError as ExpressionError
    from .errors import RewardError as RewardError
    from .errors import RewardkitError as RewardkitError
    from .errors import UnknownNameError as UnknownNameError
    from .hookspecs import Register as Register
    from .hookspecs import hookimpl as hookimpl
    from .rewards import ExactMatch as ExactMatch
    from .rewards.base import Reference as Reference
    from .rewards.base import Reward as Reward
    from .rewards.base import RewardParams as RewardParams
    from .rewards.base import reference_options as reference_options
    from .text_tokenizers import Tokenizer as Tokenizer
    from .validation import ModelRef as ModelRef
    from .validation import Params as Params
    from .validation import RegexSeconds as RegexSeconds
    from .validation import Seconds as Seconds
    from .validation import TokenizerSpec as TokenizerSpec
    from .validation import ViewSpec as ViewSpec
    from .validation import validate as validate
    from .views import View as View
