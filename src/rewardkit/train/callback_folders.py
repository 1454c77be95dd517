"""Callback folders that would land on a folder or file the Trainer or the stage itself writes in the run.

`best_checkpoint.best_dir: final` made `final/` the best copy until the stage saved its final adapter over it: the
record and the summary then named step 2 as the best model while `final/` held step 6. `best_dir: checkpoint-2`
replaced a checkpoint's optimizer and RNG state with the best copy (no resume from it), `lora_save.output_dir:
merged` had every kept adapter deleted by the merge. Checked with the config, before anything loads or is written.
Light module: no torch, transformers or trl.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from rewardkit.core.errors import ConfigError
from rewardkit.train.config import StageConfig
from rewardkit.train.run_folder import STAGE_DIRS, STAGE_FILES

# The folder parameters of the built-in callbacks that are relative to the stage's output_dir, with their defaults.
FOLDER_PARAMS = {
    "lora_save": {"output_dir": "adapters"},
    "checkpoint_inference": {"sidecar": "inference"},
    "best_checkpoint": {"sidecar": "inference", "best_dir": "best", "adapters_dir": "adapters"},
}
_CHECKPOINT = re.compile(r"checkpoint-\d+")


def _first_part(value: str, folder: Path) -> str | None:
    """The top-level name `value` (relative to the run, or absolute inside it) takes in the run, else None."""
    if os.path.isabs(value):
        rel = os.path.relpath(os.path.abspath(value), os.path.abspath(folder))
        if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep):
            return None  # elsewhere (or the run itself, which the callbacks' own checks refuse)
        value = rel
    parts = Path(os.path.normpath(value)).parts
    return parts[0] if parts and parts[0] not in (os.curdir, os.pardir) else None


def check_callback_folders(stage: StageConfig, where: str) -> None:
    """No callback folder is (or lies in) one the Trainer or the stage writes: checkpoint-N, final, merged, ..."""
    for i, callback in enumerate(stage.callbacks):
        name = str(callback.get("name"))
        for param, default in FOLDER_PARAMS.get(name, {}).items():
            value: Any = callback.get(param)
            value = default if value is None else value
            if not isinstance(value, str) or not value.strip():
                continue  # the callback's own parameter check names it
            top = _first_part(value, stage.folder)
            if top is None or not (top in STAGE_DIRS or top in STAGE_FILES or _CHECKPOINT.fullmatch(top)):
                continue
            raise ConfigError(
                f"{where}: stage {stage.label!r}: callbacks[{i}] ({name}): {param} {value!r} is inside the run's "
                f"own {top!r}, which the Trainer or the stage writes (and replaces or deletes) itself.",
                hint=f"keep {param}: {default}, or give it another name.",
            )
