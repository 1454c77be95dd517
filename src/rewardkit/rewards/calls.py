"""One reward call's state: the rows it scores and what happened to them, kept per call (never on the reward).

Several threads (or an event loop's tasks) may call one reward at once; whatever a call learns (which rows were
scored, how many failed or ran out of time) lives here until the call publishes it whole.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """The rows a reward call scores (after views and references) and the per-call counts."""

    out: list  # one score per completion; rows not scored are already filled (view missed, no reference)
    refs: list | None  # the references of the scored rows (None when the reward takes none)
    log_metric: Any = None  # TRL's log_metric(name, value), when given
    rows: list[int] = field(default_factory=list)  # indices of the completions that are scored
    texts: list[str] = field(default_factory=list)  # their texts, views applied
    context: dict = field(default_factory=dict)  # TRL's keyword arguments, per-row columns cut to `rows`
    reasons: dict[str, int] = field(default_factory=lambda: {"no reference": 0, "view missed": 0})
    applicable: int = 0  # rows with a reference (or all, when none is needed) that the completion view saw
    found: int = 0  # of those, rows where the view found its part
    errors: int = 0  # rows scored by the on_error policy
    timeouts: int = 0  # rows that ran out of time
    why: dict[int, str] = field(default_factory=dict)  # completion index -> why it is None, where known


@dataclass(frozen=True)
class RowNote:
    """A row's score with the reason for it, which the base counts: None (not applicable, in `none_reasons`) or a
    value given for a stated reason (`timeout`: an item past its own deadline, counted in `timeout_count`)."""

    value: float | None
    reason: str


def take_notes(call: Call, scores: list) -> tuple[list, int, int, Any]:
    """(plain scores, rows noted None, items past their own deadline, the score those got); each noted None is
    counted in `call.reasons` under its reason."""
    values, noted, late, late_score = [], 0, 0, None
    for s in scores:
        if isinstance(s, RowNote):
            if s.value is None:
                call.reasons[s.reason] = call.reasons.get(s.reason, 0) + 1
                noted += 1
            if s.reason == "timeout":
                late, late_score = late + 1, s.value
            s = s.value
        values.append(s)
    return values, noted, late, late_score


def warn_late(name: str, late: int, rows: int, timeout: float, score: float | None) -> None:
    """One warning for a call's items that ran past their own deadline."""
    warnings.warn(
        f"Reward {name!r}: {late} of {rows} completions ran past their {timeout}s deadline; they score {score} "
        "(reason: timeout).",
        RuntimeWarning,
        stacklevel=4,
    )
