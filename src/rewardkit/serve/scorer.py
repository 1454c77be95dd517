"""Scoring a request with the served spec: the same component calls and the same combination as `compose(SPEC)`.

Each component is called with the request's rows exactly as `Composed.__call__` calls it (same keywords, same
output check, same `combine`), so a request scores bit for bit what the local composed reward scores on the same
rows. Requests run in worker threads at once; each component is called by one thread at a time (a reward keeps
per-call state, its None reasons), and a component whose calls may merge (`Reward.merges_calls()`: a model) goes
through a `MicroBatcher`, so concurrent requests share one forward pass. Merging changes which rows share a
padded batch, which for a model can move a score in its last float digits, as any batched inference does; a
request that arrives alone is scored alone.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from rewardkit.composition.composed import Composed, _checked
from rewardkit.core.errors import ConfigError
from rewardkit.rewards.base import Reward
from rewardkit.serve.batching import MicroBatcher, RowResult
from rewardkit.serve.protocol import Scored, ScoreRequest


def reference_columns(composed: Composed) -> list[str]:
    """The dataset columns the spec's components compare with, in order of first use."""
    columns: dict[str, None] = {}
    for reward in composed.components.values():
        if isinstance(reward, Reward) and reward.needs_reference and reward.params.reference:
            columns[reward.params.reference] = None
    return list(columns)


class Scorer:
    """Scores requests with a `Composed`; safe to call from many threads at once.

    Args:
        composed (`Composed`): the served spec.
        max_wait (`float`, defaults to `0.01`): seconds a model component waits for other requests to join a call.
        max_batch_rows (`int`, defaults to `256`): rows of one merged model call.

    Example:
    >>> from rewardkit import compose
    >>> scorer = Scorer(compose({"em": {"use": "exact_match"}}))
    >>> scorer.score(ScoreRequest(["42", "7"], columns={"answer": ["42", None]})).reasons
    {'em': [None, 'no reference']}
    >>> scorer.close()
    """

    def __init__(self, composed: Composed, max_wait: float = 0.01, max_batch_rows: int = 256) -> None:
        if not (0 < max_wait <= 3600 and max_batch_rows >= 1):  # NaN fails the first test
            raise ConfigError(
                f"Scorer: max_wait {max_wait!r} s must be in (0, 3600] and max_batch_rows {max_batch_rows!r} at least 1.",
                hint="rewardkit serve --batch-wait-ms 10 --max-batch-rows 256 (the defaults).",
            )
        self.composed = composed
        self.max_wait = max_wait
        self.max_batch_rows = max_batch_rows
        self.reference_columns = reference_columns(composed)
        self._locks = {alias: threading.Lock() for alias in composed.components}
        self.batchers = {
            alias: MicroBatcher(functools.partial(self._call, alias), max_wait, max_batch_rows, name=alias)
            for alias, reward in composed.components.items()
            if isinstance(reward, Reward) and reward.merges_calls()
        }

    def _call(self, alias: str, kwargs: dict[str, Any]) -> RowResult:
        """One call of one component: its checked scores and each row's None reason."""
        reward = self.composed.components[alias]
        n = len(kwargs["completions"])
        with self._locks[alias]:
            if isinstance(reward, Reward):
                reward.row_reasons = []
            scores = _checked(alias, reward(**kwargs), n)
            reasons = list(getattr(reward, "row_reasons", None) or [])
        if len(reasons) != n:  # a component that keeps no per-row reasons (a plugin's own __call__)
            reasons = ["returned None" if s is None else None for s in scores]
        return scores, reasons

    def score(self, request: ScoreRequest) -> Scored:
        """Every component's scores, the combined score and the None reasons of these rows."""
        kwargs = request.kwargs()
        components: dict[str, list[float | None]] = {}
        reasons: dict[str, list[str | None]] = {}
        if not request.completions:  # nothing to score (OpenRLHF sends empty shares when it has few rows)
            return Scored({a: [] for a in self.composed.components}, [], {a: [] for a in self.composed.components})
        for alias in self.composed.components:
            batcher = self.batchers.get(alias)
            result = batcher.submit(kwargs) if batcher is not None else self._call(alias, kwargs)
            components[alias], reasons[alias] = result
        return Scored(components, self.composed.combine(components), reasons)

    def close(self) -> None:
        """Finish the merged calls in flight and stop their threads."""
        for batcher in self.batchers.values():
            batcher.close()


def load_scorer(
    spec: Any,
    overrides: list[str] | None = None,
    workers: int = 1,
    max_wait: float = 0.01,
    max_batch_rows: int = 256,
) -> Scorer:
    """The scorer of a spec (a file, a preset, a dict) with `--set` overrides, its models checked and loaded.

    `max_wait` (seconds) and `max_batch_rows` set the micro-batcher of model components (`Scorer`). `workers` > 1 sets `workers: N` on every sync component that holds no model and does not set it already
    (its batches split across N processes: CPU-bound rewards); a model stays loaded once, in the server.
    """
    from rewardkit.models import compose_checked

    composed = compose_checked(spec, overrides)
    if workers > 1:
        spread = [
            f"{alias}.workers={workers}"
            for alias, reward in composed.components.items()
            if isinstance(reward, Reward)
            and not reward.is_async
            and not callable(getattr(reward, "model", None))
            and reward.params.workers is None
        ]
        if spread:
            composed = compose_checked(spec, [*(overrides or []), *spread])
    for reward in composed.components.values():
        load = getattr(reward, "model", None)
        if isinstance(reward, Reward) and callable(load):
            load()  # loaded before /health answers, not inside the first request
    return Scorer(composed, max_wait, max_batch_rows)
