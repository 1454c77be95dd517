"""Error types. Every message names what was wrong and, after "Hint:", how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RewardkitError(Exception):
    """Base class of every error rewardkit raises on purpose."""


class ConfigError(RewardkitError, ValueError):
    """A spec, parameter or config value is invalid."""


class UnknownNameError(ConfigError, LookupError):
    """A reward, callback, view, tokenizer or preset name is not registered."""


class AmbiguousNameError(ConfigError, LookupError):
    """Two plugins registered the same name; the bare name cannot be used."""


class ExpressionError(ConfigError):
    """A `combine` expression is not in the allowed grammar."""


class DataError(RewardkitError, ValueError):
    """Input rows (completions, columns, files) do not have the expected shape."""


class RewardError(RewardkitError, RuntimeError):
    """A reward raised while scoring; carries the reward name and the completion index."""


def closest(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest choice, or ''."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {match[0]!r}?" if match else ""
