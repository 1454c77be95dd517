"""Repetition penalty: the share of repeated n-grams, on token ids or on words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from rewardkit.core.errors import DataError
from rewardkit.rewards.base import Reference, Reward, RewardParams


def repeated_share(items: Sequence[Any], n: int) -> float:
    """1 - distinct n-grams / all n-grams (0.0 when there are fewer than n items)."""
    if len(items) < n:
        return 0.0
    grams = [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams)


class RepetitionPenalty(Reward):
    r"""`max_penalty * (1 - distinct n-grams / n-grams)`: 0.0 without repeats, towards `max_penalty` when looping.

    TRL's `get_repetition_penalty_reward` on token ids (`unit: tokens`, from TRL's `completion_ids`), or open-r1's
    version on lowercased whitespace-separated words (`unit: words`). Fewer than `ngram_size` units give 0.0.

    Args:
        ngram_size (`int`, defaults to 3): n-gram length.
        max_penalty (`float`, defaults to -1.0): the score of a fully repetitive completion (<= 0).
        unit (`"tokens" | "words"`, defaults to `"tokens"`).

    Example:
    >>> from rewardkit import get_reward
    >>> reward = get_reward("repetition_penalty", ngram_size=2)
    >>> reward(completions=["a", "b"], completion_ids=[[1, 2, 3, 4], [5, 5, 5, 5, 5]])
    [0.0, -0.75]
    """

    name = "repetition_penalty"

    class Params(RewardParams):
        ngram_size: int = Field(3, ge=1, le=1000)
        max_penalty: float = Field(-1.0, le=0, description="Score of a fully repetitive completion (<= 0).")
        unit: Literal["tokens", "words"] = "tokens"

    def score_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        if self.params.unit == "words":
            units: Sequence[Sequence[Any]] = [c.lower().split() for c in completions]
        else:
            ids = context.get("completion_ids")
            if not isinstance(ids, (list, tuple)) or len(ids) != len(completions):
                raise DataError(
                    f"Reward {self.__name__!r} counts token n-grams but got "
                    f"{'no completion_ids' if ids is None else 'completion_ids of another length'}.",
                    hint="TRL passes them; outside TRL pass completion_ids=[...] or use unit: words.",
                )
            units = ids
        out: list[float | None] = []
        for items in units:
            share = repeated_share(items, self.params.ngram_size)
            out.append(share * self.params.max_penalty if share else 0.0)
        return out
