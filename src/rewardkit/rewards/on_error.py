"""What a failing reward's rows score: `on_error` row by row (the failing rows found one at a time), or for a
whole batch (a reward without the row-by-row fallback, e.g. a remote one whose servers are down)."""

from __future__ import annotations

import warnings
from typing import Any

from rewardkit.core.errors import ConfigError, DataError, RewardError
from rewardkit.rewards.calls import Call


def one_row(call: Call, j: int) -> tuple[list[str], list | None, dict]:
    """(texts, refs, context) of row j of `call` alone."""
    n = len(call.texts)
    ctx = {k: ([v[j]] if isinstance(v, list) and len(v) == n else v) for k, v in call.context.items()}
    return [call.texts[j]], [call.refs[j]] if call.refs is not None else None, ctx


def row_outcome(name: str, on_error: str, call: Call, j: int, exc: BaseException | None, got: Any) -> Any:
    """Row j's score from a one-row call that returned `got` or raised `exc` (on_error applied)."""
    if exc is None:
        if not isinstance(got, (list, tuple)) or len(got) != 1:
            n = len(got) if isinstance(got, (list, tuple)) else type(got).__name__
            raise RewardError(f"Reward {name!r} returned {n} scores for 1 completion.")
        return got[0]
    if isinstance(exc, (DataError, ConfigError)):
        raise exc
    if not isinstance(exc, (Exception, SystemExit)):
        raise exc  # KeyboardInterrupt, CancelledError
    if on_error == "raise":
        raise RewardError(
            f"Reward {name!r} failed on completion {call.rows[j]} "
            f"({call.texts[j][:80]!r}): {type(exc).__name__}: {exc}.",
            hint="fix the input or set on_error: none | zero.",
        ) from exc
    call.errors += 1
    if on_error == "none":
        call.why[call.rows[j]] = "error"
    return None if on_error == "none" else 0.0


def batch_failed(name: str, on_error: str, call: Call, exc: BaseException) -> list[float | None]:
    """on_error for every row of a failed batch."""
    if on_error == "raise":
        if isinstance(exc, RewardError):
            raise exc
        raise RewardError(
            f"Reward {name!r} failed on {len(call.texts)} completions: {type(exc).__name__}: {exc}.",
            hint="set on_error: none | zero to score them instead.",
        ) from exc
    warnings.warn(
        f"{exc} Under on_error: {on_error} those {len(call.texts)} rows score {'None' if on_error == 'none' else '0.0'}.",
        RuntimeWarning,
        stacklevel=5,
    )
    call.errors += len(call.texts)
    if on_error == "none":
        call.why.update(dict.fromkeys(call.rows, "error"))
    return [None if on_error == "none" else 0.0] * len(call.texts)
