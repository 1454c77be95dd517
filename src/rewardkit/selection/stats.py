"""Is the best checkpoint really better? A seeded paired bootstrap over the rows every checkpoint shares.

Each resample draws the same row ids (with replacement) for every checkpoint, applies the spec's aggregate to
the drawn rows (`corpus`: the expression over each component's mean of its non-None drawn rows, exactly
`Scores.corpus`; `item`: the mean of the drawn rows' combined scores) and compares each checkpoint with the
best one on that same draw. Vectorised: a resample is a row-count vector, so every mean of every checkpoint and
resample is one matrix product. numpy only (light: no torch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rewardkit.composition import expr
from rewardkit.core.errors import ConfigError

if TYPE_CHECKING:
    from rewardkit.composition.composed import Composed
    from rewardkit.selection.checkpoint_score import CheckpointScore

Policy = Literal["best", "earliest_tied"]
POLICIES = ("best", "earliest_tied")


@dataclass
class Interval:
    """One checkpoint's bootstrap result: its score's interval and its difference to the best's."""

    ci_low: float | None
    ci_high: float | None
    diff_low: float | None
    diff_high: float | None
    tied_with_best: bool | None  # the difference's interval contains 0 (None: not scorable)


def _eval(node: expr.Node, values: dict[str, np.ndarray]) -> np.ndarray:
    """`expr.evaluate` over arrays: NaN stays NaN, x/0 is NaN, min/max/clip propagate NaN (numpy does)."""
    if isinstance(node, expr.Num):
        return np.asarray(node.value, dtype=float)
    if isinstance(node, expr.Var):
        return values[node.name]
    if isinstance(node, expr.Bin):
        a, b = _eval(node.left, values), _eval(node.right, values)
        if node.op == "/":
            return np.where(b == 0, np.nan, a / np.where(b == 0, 1.0, b))
        return a + b if node.op == "+" else a - b if node.op == "-" else a * b
    args = [_eval(a, values) for a in node.args]
    if node.func == "clip":  # bounds that cross (lo > hi, from rewards) have no value: NaN, as evaluate refuses them
        return np.where(args[1] > args[2], np.nan, np.minimum(np.maximum(args[0], args[1]), args[2]))
    out = args[0]
    for arg in args[1:]:
        out = np.minimum(out, arg) if node.func == "min" else np.maximum(out, arg)
    return out


def combine_means(composed: Composed, means: dict[str, np.ndarray]) -> np.ndarray:
    """`Composed.combine_row` applied elementwise to arrays of component means (NaN = None)."""
    stacked = np.stack([means[a] for a in composed.components])
    missing = np.isnan(stacked)
    with np.errstate(all="ignore"):
        out = np.array(
            _eval(composed.tree, {a: np.nan_to_num(means[a], nan=0.0) for a in composed.components}), dtype=float
        ) * np.ones(stacked.shape[1:])
    out[missing.all(axis=0) if composed.none == "zero" else missing.any(axis=0)] = np.nan
    out[~np.isfinite(out)] = np.nan  # an overflow has no score
    return out


def _aligned(checkpoints: Sequence[Any], key: str) -> np.ndarray:
    """(checkpoints, rows) matrix of one per-row series (a component alias or 'combined'), NaN for None,
    rows in the order of the ids every checkpoint has."""
    ids = sorted(set.intersection(*(set(c.row_scores["ids"]) for c in checkpoints)))
    out = np.full((len(checkpoints), len(ids)), np.nan)
    for i, c in enumerate(checkpoints):
        rs = c.row_scores
        series = rs["combined"] if key == "combined" else rs["components"][key]
        where = {rid: j for j, rid in enumerate(rs["ids"])}
        out[i] = [np.nan if (v := series[where[rid]]) is None else v for rid in ids]
    return out


def resample_counts(n_rows: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, rows) how often each row is drawn in each resample; seeded, so reruns agree."""
    draws = np.random.default_rng(seed).integers(0, n_rows, size=(resamples, n_rows))
    offsets = (draws + n_rows * np.arange(resamples)[:, None]).ravel()
    return np.bincount(offsets, minlength=resamples * n_rows).reshape(resamples, n_rows).astype(float)


def _means(matrix: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(checkpoints, resamples) mean of the non-NaN drawn rows; NaN where a draw has none."""
    present = ~np.isnan(matrix)
    sums = np.where(present, matrix, 0.0) @ counts.T
    n = present.astype(float) @ counts.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, sums / np.where(n > 0, n, 1.0), np.nan)


def bootstrap_scores(
    composed: Composed, checkpoints: Sequence[CheckpointScore], aggregate: str, resamples: int, seed: int
) -> np.ndarray:
    """(checkpoints, resamples) score of each checkpoint on each paired resample (NaN = no score)."""
    if aggregate == "item":
        matrix = _aligned(checkpoints, "combined")
        return _means(matrix, resample_counts(matrix.shape[1], resamples, seed))
    matrices = {a: _aligned(checkpoints, a) for a in composed.components}
    counts = resample_counts(next(iter(matrices.values())).shape[1], resamples, seed)
    return combine_means(composed, {a: _means(m, counts) for a, m in matrices.items()})


def _percentiles(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - level) / 2 * 100
    with np.errstate(all="ignore"):
        low, high = (np.nanpercentile(values, q, axis=1) if values.size else values for q in (tail, 100 - tail))
    return low, high


def paired_bootstrap(
    composed: Composed,
    checkpoints: Sequence[CheckpointScore],
    best: CheckpointScore,
    aggregate: str,
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Interval]:
    """Each checkpoint's `level` interval and its difference to `best`, by name; needs `row_scores`."""
    scored = [c for c in checkpoints if c.value(aggregate) is not None and c.row_scores]
    out = {c.name: Interval(None, None, None, None, None) for c in checkpoints}
    if best not in scored or resamples < 1:
        return out
    import warnings

    scores = bootstrap_scores(composed, scored, aggregate, resamples, seed)
    diff = scores - scores[scored.index(best)]
    with warnings.catch_warnings():  # a checkpoint with no score on any draw: its interval stays None
        warnings.simplefilter("ignore", RuntimeWarning)
        (lo, hi), (dlo, dhi) = _percentiles(scores, level), _percentiles(diff, level)
    for i, c in enumerate(scored):
        ci_low, ci_high, diff_low, diff_high = (
            None if math.isnan(v) else float(v) for v in (lo[i], hi[i], dlo[i], dhi[i])
        )
        # both ends of one interval are NaN together (percentiles of the same all-NaN row)
        tied = None if diff_low is None or diff_high is None else bool(diff_low <= 0.0 <= diff_high)
        out[c.name] = Interval(ci_low, ci_high, diff_low, diff_high, tied_with_best=tied)
    return out


def choose(
    ordered: Sequence[CheckpointScore], best: CheckpointScore | None, intervals: dict[str, Interval], policy: str
) -> CheckpointScore | None:
    """The pick: `best` (argmax), or `earliest_tied` (the earliest, in step order, not significantly worse)."""
    if policy not in POLICIES:
        raise ConfigError(f"policy {policy!r} is not valid.", hint="best | earliest_tied.")
    if policy == "best" or best is None:
        return best
    return next((c for c in ordered if intervals.get(c.name) and intervals[c.name].tied_with_best), best)


def tie_note(ordered: Sequence[CheckpointScore], best: CheckpointScore | None, aggregate: str) -> str | None:
    """A sentence when the top score is shared: with every score equal, a pick by score means nothing."""
    if best is None:
        return None
    top = best.value(aggregate)
    scored = [c for c in ordered if c.value(aggregate) is not None]
    shared = [c for c in scored if c.value(aggregate) == top]
    if len(shared) < 2:
        return None
    if len(shared) == len(scored):
        return (
            f"All {len(scored)} checkpoints score {top:.6g}: a tie, the score cannot tell them apart; "
            f"{best.name} is picked only because it is the earliest."
        )
    return (
        f"{len(shared)} checkpoints tie for the best score {top:.6g} ({', '.join(c.name for c in shared)}); "
        f"{best.name} is picked because it is the earliest."
    )


MAX_RESAMPLES = 100_000  # 1e8 ran 99 s and allocates resamples x rows counts


def check_bootstrap_params(resamples: object, seed: object, policy: object) -> None:
    """One error shape for the CLI and Python callers."""
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 0:
        raise ConfigError(
            f"bootstrap: {resamples!r} is not a number of resamples.",
            hint="--bootstrap 1000 (0 turns the intervals off).",
        )
    if resamples > MAX_RESAMPLES:
        raise ConfigError(
            f"bootstrap: {resamples} resamples is more than {MAX_RESAMPLES} (1000 to 10000 is usual; each "
            "resample holds a count per row in memory).",
            hint="--bootstrap 10000.",
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**128:
        raise ConfigError(f"seed: {seed!r} is not an integer from 0 to 2**128 - 1.", hint="--seed 0.")
    if policy not in POLICIES:
        raise ConfigError(f"policy {policy!r} is not valid.", hint="best | earliest_tied.")
    if policy == "earliest_tied" and resamples < 1:
        raise ConfigError(
            "policy 'earliest_tied' needs the bootstrap intervals.", hint="--bootstrap 1000 (or policy best)."
        )
