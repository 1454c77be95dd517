"""Format rewards."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rewardkit.core.validation import RegexSeconds
from rewardkit.rewards.base import Reference, Reward, RewardParams
from rewardkit.text import safe_regex


class FormatRegex(Reward):
    r"""1.0 when the completion matches a regular expression, else 0.0.

    Patterns use the `regex` package with a time budget: a catastrophic pattern on hostile text scores 0.0
    and warns once instead of hanging the training step. An invalid pattern fails at construction.

    Args:
        pattern (`str`): the regular expression.
        mode (`"search" | "match" | "fullmatch"`, defaults to `"search"`).
        flags (`list[str]`): any of IGNORECASE, MULTILINE, DOTALL, VERBOSE, ASCII, UNICODE.
        regex_timeout (`float`, defaults to 1.0): seconds one match may take.

    Example:
    >>> from rewardkit import get_reward
    >>> reward = get_reward("format_regex", pattern=r"<think>.*?</think>\s*\S", flags=["DOTALL"])
    >>> reward(completions=["<think>hm</think> 42", "42"])
    [1.0, 0.0]
    """

    name = "format_regex"

    class Params(RewardParams):
        pattern: str
        mode: Literal["search", "match", "fullmatch"] = "search"
        flags: list[str] = Field(default_factory=list)
        regex_timeout: RegexSeconds = 1.0

    def __init__(self, params: RewardParams | None = None, /, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        self._compiled = safe_regex.compile_pattern(self.params.pattern, self.params.flags, f"reward {self.__name__!r}")

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_compiled")  # compiled `regex` patterns do not pickle reliably; rebuild on load
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._compiled = safe_regex.compile_pattern(self.params.pattern, self.params.flags)

    def score(self, completion: str, reference: Reference) -> float | None:
        p = self.params
        found = safe_regex.run(self._compiled, p.mode, completion, p.regex_timeout, f"reward {self.__name__!r}")
        return 1.0 if found is not None else 0.0
