"""Error types. Every error carries what was wrong, where, and how to fix it; `render` is the one formatter.

An error is built from parts (`ConfigError("must be > 0", owner="reward 'brevity'", path="max_length", hint="...")`,
the form every call site in rewardkit uses) or from a finished sentence (`ConfigError("x: y. Hint: z")`).
Either way `problem`, `where` and `hint` are attributes, and `str()` renders the one-line message
`<context>: <file:line>: <owner>: <field path>: <problem>. Hint: <hint>`. Code that catches an error to say
where it happened re-raises `exc.within("train.yaml: stage 'grpo'")`, which adds context without re-formatting
(the type, the parts and the traceback cause stay).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

HINT = " Hint: "
E = TypeVar("E", bound="RewardkitError")


@dataclass(frozen=True)
class Where:
    """Where a problem is: the object that owns it, the field path inside it, and the file and line."""

    owner: str | None = None
    path: str | None = None
    file: str | None = None
    line: int | None = None

    def parts(self) -> list[str]:
        """The non-empty location parts, outermost first."""
        file = f"{self.file}:{self.line}" if self.file and self.line is not None else self.file
        return [p for p in (file, self.owner, self.path) if p]


def render(problem: str, where: Where, hint: str | None, context: tuple[str, ...] = ()) -> str:
    """The one-line message: context, location, problem, then the hint."""
    text = problem
    if hint:
        text = f"{problem}{'' if problem.endswith(('.', '?', '!')) else '.'}{HINT}{hint}"
    return ": ".join([*context, *where.parts(), text])


def _split_hint(message: str) -> tuple[str, str | None]:
    """(problem, hint) of a finished sentence 'problem. Hint: fix' (the hint is None when there is none)."""
    head, sep, tail = message.partition(HINT)
    return (head, tail) if sep else (message, None)


class RewardkitError(Exception):
    """Base class of every error rewardkit raises on purpose."""

    def __init__(
        self,
        problem: str = "",
        *,
        owner: str | None = None,
        path: str | None = None,
        file: str | None = None,
        line: int | None = None,
        hint: str | None = None,
        context: Iterable[str] = (),
    ) -> None:
        super().__init__(problem)
        self.where = Where(owner, path, file, line)
        self.context: tuple[str, ...] = tuple(context)
        # A finished sentence is kept verbatim (its text is what users and tests read); its parts are parsed.
        self._sentence: str | None = problem if (hint is None and self.where == Where()) else None
        self.problem, self.hint = _split_hint(problem) if self._sentence is not None else (problem, hint)

    def __str__(self) -> str:
        if self._sentence is not None:
            return ": ".join([*self.context, self._sentence])
        return render(self.problem, self.where, self.hint, self.context)

    def within(self: E, *context: str) -> E:
        """A copy of this error (same type, parts and cause) with `context` in front, e.g. the file and stage."""
        new = copy.copy(self)
        new.context = tuple(c for c in context if c) + self.context
        new.__traceback__ = self.__traceback__
        return new


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
