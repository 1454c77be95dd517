"""The combined reward: named components scored, then combined by weights or a whitelisted expression.

None handling (`none:` in the spec):
    `zero` (default): a None component adds nothing, exactly like TRL's nansum over weighted rewards;
        a row where every component is None is None.
    `propagate`: a row with any None component is None.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import statistics
from typing import Any, Literal

from rewardkit.composition import expr
from rewardkit.core.aio import run_sync
from rewardkit.core.errors import RewardError
from rewardkit.rewards.base import as_score


def finite_mean(values: list[float]) -> float:
    """The mean of finite scores, always finite: fmean's sum overflows for huge ones (two 1e308), the mean never."""
    try:
        return statistics.fmean(values)
    except OverflowError:  # only then divide first: other means stay bit for bit fmean's
        return math.fsum(v / len(values) for v in values)


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


def is_async(reward: Any) -> bool:
    """Whether a component scores asynchronously: a reward with `is_async`, or a callable with an async `__call__`."""
    flag = getattr(reward, "is_async", None)
    if isinstance(flag, bool):
        return flag
    call = getattr(type(reward), "__call__", None)  # noqa: B004 (an instance's async __call__, as TRL checks it)
    return inspect.iscoroutinefunction(reward) or inspect.iscoroutinefunction(call)


async def acall(reward: Any, **kwargs: Any) -> Any:
    """Await one component: its `acall` when it has one, else its async `__call__`."""
    method = getattr(reward, "acall", None)
    return await (method(**kwargs) if callable(method) else reward(**kwargs))


class AsyncTRL:
    """What `to_trl()` hands GRPOTrainer for an async reward: an async callable TRL awaits with the others.

    TRL (1.16, `is_async_callable`) looks for `async def __call__` on the object's class and gathers such rewards
    with `asyncio.gather`; a `Reward` keeps a synchronous `__call__` for every other caller, so it travels in this
    wrapper, which pickles with it and logs under the same name.

    >>> from rewardkit import compose
    >>> import asyncio
    >>> async def judge(completions, **kwargs):
    ...     return [1.0 for c in completions]
    >>> funcs, weights = compose({"rewards": {"j": judge}}).to_trl()
    >>> funcs[0].__name__, asyncio.run(funcs[0](completions=["a"]))
    ('j', [1.0])
    """

    def __init__(self, reward: Any) -> None:
        self.reward = reward
        self.__name__ = getattr(reward, "__name__", type(reward).__name__)

    def __repr__(self) -> str:
        return f"AsyncTRL({self.reward!r})"

    async def __call__(self, **kwargs: Any) -> list[float | None]:
        return await acall(self.reward, **kwargs)


def _finite(value: float, expression: str, row: dict) -> float:
    if math.isinf(value) or math.isnan(value):
        raise RewardError(
            f"combine {expression!r} overflowed to {value} on components {row}.",
            hint="use smaller weights (scores are finite numbers).",
        )
    return value


def _count(kwargs: dict) -> int | None:
    completions = kwargs.get("completions")
    return len(completions) if isinstance(completions, (list, tuple)) else None


async def _nothing() -> dict:
    return {}


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

    @property
    def is_async(self) -> bool:
        """Whether any component is async (then TRL gets this composition, or those components, as async)."""
        return any(is_async(r) for r in self.components.values())

    def to_trl(self) -> tuple[list, list[float]]:
        """(reward_funcs, reward_weights) for GRPOTrainer: one function per component when linear.

        An async component (or, when not linear, an async composition) is handed over as an `AsyncTRL`, so
        GRPOTrainer awaits it together with the other async rewards.
        """
        weights = self.weights
        if weights is None:
            return [AsyncTRL(self) if self.is_async else self], [1.0]
        funcs = [AsyncTRL(r) if is_async(r) else r for r in self.components.values()]
        return funcs, [weights[a] for a in self.components]

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
        """Each component's scores, keyed by alias; each output checked (length, type, finite).

        Async components are awaited together (`ascore_components`); sync ones run one after another.
        """
        if self.is_async:
            return run_sync(self.ascore_components(**kwargs))
        return {alias: _checked(alias, reward(**kwargs), _count(kwargs)) for alias, reward in self.components.items()}

    async def ascore_components(self, **kwargs: Any) -> dict[str, list[float | None]]:
        """`score_components` to await: the async components together, the sync ones meanwhile in one thread."""
        sync = {a: r for a, r in self.components.items() if not is_async(r)}

        def run_sync_ones() -> dict[str, Any]:
            return {alias: reward(**kwargs) for alias, reward in sync.items()}

        aliases = [a for a in self.components if a not in sync]
        *outputs, sync_outputs = await asyncio.gather(
            *(acall(self.components[a], **kwargs) for a in aliases),
            asyncio.to_thread(run_sync_ones) if sync else _nothing(),
        )
        values = {**dict(zip(aliases, outputs)), **sync_outputs}
        return {alias: _checked(alias, values[alias], _count(kwargs)) for alias in self.components}

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
        return self._finish(self.score_components(**kwargs), kwargs)

    async def acall(self, **kwargs: Any) -> list[float | None]:
        """`__call__` to await (async components awaited together)."""
        return self._finish(await self.ascore_components(**kwargs), kwargs)

    def _finish(self, scores: dict[str, list[float | None]], kwargs: dict) -> list[float | None]:
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:  # TRL logs only this function's total; log the parts ourselves
            for alias, values in scores.items():
                present = [v for v in values if v is not None]
                if present:
                    log_metric(f"rewards/{self.__name__}/{alias}/mean", finite_mean(present))
        return self.combine(scores)
