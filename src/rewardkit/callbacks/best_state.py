"""best_checkpoint's state, declared once for the parts it is built from (the alarm, the record, best/)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardkit.callbacks.params import BestCheckpointParams
from rewardkit.composition.composed import Composed
from rewardkit.selection.checkpoint_score import CheckpointScore


class BestState:
    """Base of best_checkpoint's mixins: `BestCheckpointCallback.__init__` sets these; each part reads them, and
    one part calls another's methods through the declarations below, so every use is checked against one type."""

    params: BestCheckpointParams
    composed: Composed
    spec: dict[str, Any]  # the portable compose spec recorded in scores.json
    metric_name: str
    checkpoints: dict[int, CheckpointScore]  # by step
    pick: CheckpointScore | None
    tie: str | None
    best_dir_state: dict | None
    divergence_found: dict | None
    state: Any  # the Trainer's state, once training began
    _ids: set[str] | None

    # Methods of the host or of another part.
    _adapters: Callable[[Any], Path]
    _sidecar: Callable[[Any], Path]
    _decide: Callable[[], list[CheckpointScore]]
    _write_record: Callable[[Any], None]
    _warn_rows: Callable[[Any], None]
    _warn_once: Callable[[Any, str], None]
