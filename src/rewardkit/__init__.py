"""rewardkit: rewards, callbacks and training runs for TRL, found through a pluggy registry.

Everything a plugin needs is importable from here: `hookimpl`, `Register`, `Reward`, `RewardParams`,
`Params`, `ViewSpec`, `TokenizerSpec`, `Reference`, `validate` and the error types.
"""

from __future__ import annotations

from .api import (build, compose, get_callback, get_generator, get_preset, get_reward, get_tokenizer, get_view,
                  list_callbacks, list_generators, list_presets, list_rewards, list_tokenizers, list_views,
                  load_spec)
from .compose import Composed
from .errors import (AmbiguousNameError, ConfigError, DataError, ExpressionError, RewardError, RewardkitError,
                     UnknownNameError)
from .hookspecs import Register, hookimpl
from .rewards import ExactMatch
from .rewards.base import Reference, Reward, RewardParams, reference_options
from .validation import Params, RegexSeconds, Seconds, TokenizerSpec, ViewSpec, validate

__version__ = "0.1.0"
__all__ = ["AmbiguousNameError", "Composed", "ConfigError", "DataError", "ExactMatch", "ExpressionError", "Params", "Reference",
           "RegexSeconds", "Register", "Reward", "RewardError", "RewardParams", "RewardkitError", "Seconds",
           "TokenizerSpec", "UnknownNameError", "ViewSpec", "build", "compose", "get_callback", "get_generator",
           "get_preset", "get_reward", "get_tokenizer", "get_view", "hookimpl", "list_callbacks",
           "list_generators", "list_presets", "list_rewards", "list_tokenizers", "list_views", "load_spec",
           "reference_options", "validate"]
