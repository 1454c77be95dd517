"""One reward call's state: the rows it scores and what happened to them, kept per call (never on the reward).

Several threads (or an event loop's tasks) may call one reward at once; whatever a call learns (which rows were
scored, how many failed or ran out of time) lives here until the call publishes it whole.
"""

from __future__ import annotations

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
