"""How many rows each checkpoint's completions had the scored part in (e.g. a reason after the answer), and when
that share drops from one checkpoint to the next: a spec whose components average only over the rows where the
part is found (`missing: none`, the official Korean corpus rule) cannot see a model that stops writing it."""

from __future__ import annotations

from rewardkit.composition.scoring import coverage_line, views_coverage, worth_showing
from rewardkit.selection.checkpoint_score import CheckpointScore


def coverage_cell(checkpoint: CheckpointScore, view: str) -> str:
    """`found/rows` of one view for one checkpoint ("-" when it was not measured)."""
    info = views_coverage(checkpoint.coverage).get(view)
    return "-" if info is None else f"{info['found']}/{info['rows']}"


def coverage_views(checkpoints: list[CheckpointScore]) -> list[str]:
    """The completion views worth a column (`worth_showing` for some checkpoint), in first-seen order."""
    return list(
        dict.fromkeys(
            view for c in checkpoints for view, info in views_coverage(c.coverage).items() if worth_showing(info)
        )
    )


def coverage_text(checkpoint: CheckpointScore) -> str | None:
    """`reason coverage: 12/12 rows`, one part per view, for one checkpoint (None: no view measured)."""
    lines = [coverage_line(v, info) for v, info in views_coverage(checkpoint.coverage).items() if worth_showing(info)]
    return "; ".join(lines) or None


def _share(info: dict) -> float:
    return info["found"] / info["rows"] if info["rows"] else 1.0


def coverage_drops(checkpoints: list[CheckpointScore]) -> list[str]:
    """One warning per view whose coverage fell from one checkpoint to the next (in step order), naming each fall.

    >>> a = CheckpointScore("step_2", "f", 2, None, 4, {}, None, None,
    ...     coverage={"r1": {"view": "reason", "found": 4, "rows": 4, "missing": "none"}})
    >>> b = CheckpointScore("step_4", "f", 4, None, 4, {}, None, None,
    ...     coverage={"r1": {"view": "reason", "found": 1, "rows": 4, "missing": "none"}})
    >>> coverage_drops([a, b])[0][:70]
    'reason coverage dropped: 4/4 (step_2) -> 1/4 (step_4); r1 average over'
    """
    out = []
    for view in coverage_views(checkpoints):
        seen = [(c, info) for c in checkpoints if (info := views_coverage(c.coverage).get(view)) is not None]
        falls = [
            f"{a['found']}/{a['rows']} ({ca.name}) -> {b['found']}/{b['rows']} ({cb.name})"
            for (ca, a), (cb, b) in zip(seen, seen[1:])
            if _share(b) < _share(a)
        ]
        if not falls:
            continue
        only = sorted({alias for _, info in seen for alias in info["only_found"]})
        why = (
            f"; {', '.join(only)} average over those rows only, so a checkpoint that leaves the {view} out loses "
            f"nothing on them: compare with a spec that scores a missing {view} 0 (e.g. the preset official_strict)"
            if only
            else ""
        )
        out.append(f"{view} coverage dropped: {', '.join(falls)}{why}")
    return out
