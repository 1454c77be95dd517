"""Running math-verify tasks (TEMPORARY in-process stand-in until core.pool lands)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Outcome:
    status: str
    value: Any = None
    error: str = ""


def run_items(fn: Callable[[Any], Any], items: list, timeout: float, workers: int) -> list[Outcome]:
    """fn(item) for each item."""
    out = []
    for item in items:
        try:
            out.append(Outcome("ok", fn(item)))
        except Exception as exc:
            out.append(Outcome("error", error=f"{type(exc).__name__}: {exc}"))
    return out
