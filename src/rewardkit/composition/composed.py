"""The combined reward: named components scored, then combined by weights or a whitelisted expression.

None handling (`none:` in the spec):
    `zero` (default): a None component adds nothing, exactly like TRL's nansum over weighted rewards;
        a row where every component is None is None.
    `propagate`: a row with any None component is None.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Literal

from rewardkit.composition import expr
from rewardkit.core.errors import RewardError
from rewardkit.rewards.base import as_score


def _checked(alias: str, values: Any, n: int | None) -> list[float | None]:
    """A component's output: a list of one float-or-None per completion, finite; else RewardError.

    Checked again even for `Reward`s: a plugin may override `__call__`, and the check costs ~2 % (bench_core).
    """
    if not isinstance(values, (list, tuple)):
        raise RewardError(
            f"Component {alias!r} returned {type(values).__name__}, not a list of scores.",
            hint="a reward returns one float or None per completion.",
        )
    if n is not None and len(values) != n:
        raise RewardError(
            f"Component {alias!r} returned {len(values)} scores for {n} completions.",
            hint="a reward returns exactly one float or None per completion (fix the plugin that provides it).",
        )
    # Fast path for what rewards return (finite floats, None); anything else gets the full check.
    return [
        v if (v.__class__ is float and v - v == 0.0) or v is None else as_score(v, alias, i)
        for i, v in enumerate(values)
    ]


def _finite(value: float, expression: str, row: dict) -> float:
    if math.isinf(value) or math.isnan(value):
        raise RewardError(
            f"combine {expression!r} overflowed to {value} on components {row}.",
            hint="use smaller weights (scores are finite numbers).",
        )
    return value


class Composed:
    """A reward made of named components; callable like any reward and picklable.

    Build it with `rewardkit.compose(spec)`, which builds the components through the registry.

    Example:
    >>> from rewardkit import compose
    >>> r = compose({"rewards": {"em": {"use": "exact_match"}, "short": {"use": "brevity", "max_length": 10}},
    ...              "combine": "(3*em + short) / 4"})
    >>> r(completions=["42", "41"], answer=["42", "42"])
    [0.95, 0.2]
    """

    def __init__(
        self,
        components: dict[str, Any],
        combine: expr.Node,
        *,
        none: Literal["zero", "propagate"] = "zero",
        name: str = "composed",
        text: str = "",
    ) -> None:
        self.components = components
        self.tree = combine
        self.none = none
        self.__name__ = name
        self.expression = text
        self.linear = expr.linear_form(combine)

    def __repr__(self) -> str:
        return f"Composed({self.expression!r}, components={list(self.components)})"

    @property
    def weights(self) -> dict[str, float] | None:
        """Per-component weights when the expression is linear without a constant term, else None."""
        if self.linear is None or self.linear[1] != 0:
            return None
        coeffs = self.linear[0]
        return {alias: coeffs.get(alias, 0.0) for alias in self.components}

    def to_trl(self) -> tuple[list, list[float]]:
        """(reward_funcs, reward_weights) for GRPOTrainer: one function per component when linear."""
        weights = self.weights
        if weights is None:
            return [self], [1.0]
        return list(self.components.values()), [weights[a] for a in self.components]

    def to_trl_kwargs(self) -> tuple[dict[str, Any], list[float]]:
        """({"reward_funcs", "reward_processing_classes"} for GRPOTrainer, reward_weights for GRPOConfig).

        Like `to_trl()`, but when linear a component that offers `trl_model()` (a `reward_model` whose params TRL's
        reward-model path honours) is handed over as the model itself, with its tokenizer as processing class, so
        TRL runs and prepares it (DeepSpeed / FSDP). This loads those models: call it once, when building the
        trainer. `reward_processing_classes` is None when no component is a model.

        >>> from rewardkit import compose
        >>> kwargs, weights = compose({"em": {"use": "exact_match", "weight": 2}}).to_trl_kwargs()
        >>> kwargs["reward_processing_classes"], weights
        (None, [2.0])
        """
        funcs, weights = self.to_trl()
        classes: list = [None] * len(funcs)
        if self.weights is not None:
            for i, reward in enumerate(funcs):
                native = getattr(reward, "trl_model", None)
                pair = native() if callable(native) else None
                if pair is not None:
                    funcs[i], classes[i] = pair
        return (
            {
                "reward_funcs": funcs,
                "reward_processing_classes": classes if any(c is not None for c in classes) else None,
            },
            weights,
        )

    def score_components(self, **kwargs: Any) -> dict[str, list[float | None]]:
        """Each component's scores, keyed by alias; each output checked (length, type, finite)."""
        completions = kwargs.get("completions")
        n = len(completions) if isinstance(completions, (list, tuple)) else None
        return {alias: _checked(alias, reward(**kwargs), n) for alias, reward in self.components.items()}

    def combine_row(self, values: dict[str, float | None]) -> float | None:
        """Combine one row (or corpus means) of component values under the `none` policy."""
        present = {a: v for a, v in values.items() if v is not None}
        if not present or (self.none == "propagate" and len(present) < len(values)):
            return None
        try:
            result = expr.evaluate(self.tree, {a: values.get(a) or 0.0 for a in self.components})
        except expr.Overflow:
            result = math.inf
        return None if math.isnan(result) else _finite(result, self.expression, values)

    def combine(self, scores: dict[str, list[float | None]]) -> list[float | None]:
        """Combine per-component score lists row by row."""
        aliases = list(self.components)
        rows = zip(*(scores[a] for a in aliases))
        if self.linear is None:
            return [self.combine_row(dict(zip(aliases, row))) for row in rows]
        # Linear fast path: the same weighted sum TRL computes from to_trl(), without walking the tree per row.
        coeffs = [self.linear[0].get(a, 0.0) for a in aliases]
        const = self.linear[1]
        out: list[float | None] = []
        for row in rows:
            if None in row and (self.none == "propagate" or all(v is None for v in row)):
                out.append(None)
            else:
                value = const + sum(c * v for c, v in zip(coeffs, row) if v is not None)
                out.append(_finite(value, self.expression, dict(zip(aliases, row))))
        return out

    def __call__(self, **kwargs: Any) -> list[float | None]:
        scores = self.score_components(**kwargs)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:  # TRL logs only this function's total; log the parts ourselves
            for alias, values in scores.items():
                present = [v for v in values if v is not None]
                if present:
                    log_metric(f"rewards/{self.__name__}/{alias}/mean", statistics.fmean(present))
        return self.combine(scores)
