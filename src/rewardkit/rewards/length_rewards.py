"""Length rewards."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from rewardkit.core.errors import DataError
from rewardkit.rewards.base import Reward, RewardParams
from rewardkit.rewards.inputs import Reference


class Brevity(Reward):
    """Rewards short completions: `max(0, 1 - length / max_length)`, or a soft overlong penalty.

    Modes:
        `linear`: `max(0, 1 - length / max_length)` (the seed tutorial's brevity term, times its weight).
        `soft_overlong`: 0 up to `max_length - cache`, then linear down to -1 at `max_length` (DAPO).

    Args:
        max_length (`int`): length at which the reward reaches its floor.
        unit (`"chars" | "tokens"`, defaults to `"chars"`): tokens are counted from TRL's `completion_ids`.
        mode (`"linear" | "soft_overlong"`, defaults to `"linear"`).
        cache (`int`, defaults to 0): width of the soft penalty zone (soft_overlong only).

    Example:
    >>> from rewardkit import get_reward
    >>> get_reward("brevity", max_length=200)(completions=["x" * 50, "x" * 300])
    [0.75, 0.0]
    """

    name = "brevity"

    class Params(RewardParams):
        max_length: int = Field(gt=0)
        unit: Literal["chars", "tokens"] = "chars"
        mode: Literal["linear", "soft_overlong"] = "linear"
        cache: int = Field(0, ge=0)

        @model_validator(mode="after")
        def _cache_fits(self) -> "Brevity.Params":
            if self.mode == "soft_overlong" and not 0 < self.cache <= self.max_length:
                raise ValueError("soft_overlong needs 0 < cache <= max_length (e.g. cache=max_length // 4)")
            return self

    def score_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        if self.params.unit == "tokens":
            ids = context.get("completion_ids")
            if ids is None:
                raise DataError(
                    f"Reward {self.__name__!r} counts tokens but got no completion_ids.",
                    hint="TRL passes them; outside TRL pass completion_ids=[...] or use unit='chars'.",
                )
            if not isinstance(ids, (list, tuple)) or len(ids) != len(completions):
                got = len(ids) if isinstance(ids, (list, tuple)) else type(ids).__name__
                raise DataError(
                    f"Reward {self.__name__!r}: completion_ids has {got} items for {len(completions)} completions.",
                    hint="pass one list of token ids per completion.",
                )
            lengths = [len(x) for x in ids]
        else:
            lengths = [len(c) for c in completions]
        return [self._value(n) for n in lengths]

    def _value(self, length: int) -> float:
        p = self.params
        if p.mode == "linear":
            return max(0.0, 1.0 - length / p.max_length)
        start = p.max_length - p.cache
        if length <= start:
            return 0.0
        return max(-1.0, -(length - start) / p.cache)
