"""Length rewards."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, model_validator

from rewardkit.core.errors import DataError
from rewardkit.core.validation import Builds
from rewardkit.rewards.base import Reward, RewardParams, as_score
from rewardkit.rewards.calls import RowNote
from rewardkit.rewards.inputs import Reference

# A nested reward: a name or {use: name, ...params}, built by the builder before its owner (or a built reward).
RewardSpec = Annotated[
    Any,
    Builds("rewards"),
    WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"type": "object"}], "description": "A reward name or {use: name, ...}."}
    ),
]


def lengths(owner: str, unit: str, completions: list[str], context: dict) -> list[int]:
    """Each completion's length in characters, or in tokens from TRL's `completion_ids`."""
    if unit == "chars":
        return [len(c) for c in completions]
    ids = context.get("completion_ids")
    if ids is None:
        raise DataError(
            f"Reward {owner!r} counts tokens but got no completion_ids.",
            hint="TRL passes them; outside TRL pass completion_ids=[...] or use unit='chars'.",
        )
    if not isinstance(ids, (list, tuple)) or len(ids) != len(completions):
        got = len(ids) if isinstance(ids, (list, tuple)) else type(ids).__name__
        raise DataError(
            f"Reward {owner!r}: completion_ids has {got} items for {len(completions)} completions.",
            hint="pass one list of token ids per completion.",
        )
    return [len(x) for x in ids]


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
        return [self._value(n) for n in lengths(self.__name__, self.params.unit, completions, context)]

    def _value(self, length: int) -> float:
        p = self.params
        if p.mode == "linear":
            return max(0.0, 1.0 - length / p.max_length)
        start = p.max_length - p.cache
        if length <= start:
            return 0.0
        return max(-1.0, -(length - start) / p.cache)


class CosineLength(Reward):
    r"""A correctness reward scaled by length on a cosine: short right answers earn most, short wrong ones lose most.

    TRL's `get_cosine_scaled_reward` ("Demystifying Long Chain-of-Thought Reasoning", appendix C.1): with
    `progress = min(length / max_length, 1)`, a correct completion scores
    `min_value_correct + (max_value_correct - min_value_correct) * (1 + cos(pi * progress)) / 2`, a wrong one the
    same between `max_value_wrong` (short) and `min_value_wrong` (long). Correctness comes from the nested reward
    `correct` (a score >= `threshold`); a row it scores None scores None (TRL: an unparsable gold).

    Args:
        max_length (`int`): the length where the schedule ends (TRL's `max_len`).
        correct (reward spec, defaults to `"math_verify"`): decides correctness, e.g. `{use: math_verify,
            reference: solution}` or `{use: exact_match, reference: answer}`.
        threshold (`float`, defaults to 0.5): the `correct` score from which a completion counts as correct.
        unit (`"tokens" | "chars"`, defaults to `"tokens"`): tokens are TRL's `completion_ids`.
        min_value_wrong, max_value_wrong, min_value_correct, max_value_correct (`float`): -1.0, -0.5, 0.5, 1.0.

    Example:
    >>> from rewardkit import get_reward
    >>> reward = get_reward("cosine_length", max_length=100, correct={"use": "exact_match"})
    >>> reward(completions=["4", "5"], answer=["4", "4"], completion_ids=[[1] * 50, [1] * 50])
    [0.75, -0.75]
    """

    name = "cosine_length"

    class Params(RewardParams):
        max_length: int = Field(gt=0)
        correct: RewardSpec = Field("math_verify", description="The reward that decides correctness.")
        threshold: float = 0.5
        unit: Literal["tokens", "chars"] = "tokens"
        min_value_wrong: float = -1.0
        max_value_wrong: float = -0.5
        min_value_correct: float = 0.5
        max_value_correct: float = 1.0

    def __call__(
        self,
        prompts: list | None = None,
        completions: list | None = None,
        completion_ids: list | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        judge = self.params.correct
        verdicts = judge(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
        if not isinstance(verdicts, (list, tuple)) or (
            isinstance(completions, (list, tuple)) and len(verdicts) != len(completions)
        ):
            got = len(verdicts) if isinstance(verdicts, (list, tuple)) else type(verdicts).__name__
            raise DataError(f"Reward {self.__name__!r}: its correct reward returned {got} scores.")
        checked = [as_score(v, f"{self.__name__}.correct", i) for i, v in enumerate(verdicts)]
        judged_none = dict(getattr(judge, "none_reasons", None) or {})
        out = super().__call__(prompts, completions, completion_ids, _correct=checked, **kwargs)
        count = self.none_reasons.pop("correct None", 0)
        if count:  # say why the correctness reward gave None (an unparsable gold...), not just that it did
            reasons = {f"correct: {k}": v for k, v in judged_none.items()} or {"correct: returned None": count}
            self.none_reasons.update(reasons)
        return out

    def score_batch(self, completions: list[str], references: list[Reference] | None, **context: Any) -> list[Any]:
        p = self.params
        out: list[Any] = []
        for n, verdict in zip(lengths(self.__name__, p.unit, completions, context), context["_correct"]):
            if verdict is None:
                out.append(RowNote(None, "correct None"))
                continue
            low, high = (
                (p.min_value_correct, p.max_value_correct)
                if verdict >= p.threshold
                else (p.max_value_wrong, p.min_value_wrong)
            )
            cosine = math.cos(min(n / p.max_length, 1.0) * math.pi)
            out.append(low + 0.5 * (high - low) * (1.0 + cosine))
        return out
