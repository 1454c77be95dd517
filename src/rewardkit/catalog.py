"""What `rewardkit list` reports: every registered name by kind, failed plugins and conflicts."""

from __future__ import annotations

from dataclasses import asdict

from .plugins import get_registry
from .registry import KINDS


def catalog() -> dict:
    """A JSON-ready description of the registry."""
    registry = get_registry()
    out: dict = {kind: [e.describe() for name in registry.names(kind) for e in registry.entries[kind][name]]
                 for kind in KINDS}
    for entry in out["presets"]:
        entry.pop("params", None)
    out["failed_plugins"] = [asdict(f) for f in registry.failed]
    out["conflicts"] = {k: v for k, v in registry.conflicts().items() if v}
    return out
