"""`rewardkit_stage.json`: what a finished stage leaves in its folder, written by the pipeline and read back by
`rewardkit generate --from-run`. One module owns the format, producer and reader.

The record holds the stage's result, the base model the adapter was trained on and the stage config. Paths are
recorded absolute (the training's working directory is gone when the run folder is read from elsewhere); a
hub id keeps its id and, when the loaded model knows it, the commit it resolved to (`base_model_revision`).
Reading validates the record with the config's own validator: a hand-edited or foreign record is one error line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from pydantic import ConfigDict

from rewardkit.core.fileio import atomic_write_json, read_json
from rewardkit.core.validation import Params, stage_ref
from rewardkit.core.validation import validate as validate_params
from rewardkit.train.config import STAGE_FILE, StageConfig, validate

# Config fields holding a local path (or a hub id): recorded absolute when they name something on disk.
_PATH_FIELDS = (
    ("model",),
    ("tokenizer",),
    ("output_dir",),
    ("dataset", "path"),
    ("dataset", "eval_file"),
    ("dataset", "smoke_path"),
)
_HINT = "re-run the stage, or pass MODEL --adapter DIR instead of --from-run."


class StageRecord(Params):
    """The fields of a stage record that are read back; the result's numbers (steps, loss...) are not."""

    model_config = ConfigDict(extra="ignore")
    name: str | None = None
    base_model: str | None = None
    base_model_revision: str | None = None
    working_dir: str | None = None  # where the training ran (relative paths in the config were taken from there)
    config: StageConfig


T = TypeVar("T")


def absolute_if_local(value: T) -> T | str:
    """An absolute path for a string naming an existing file or folder; anything else (a hub id) unchanged."""
    if isinstance(value, str) and value and stage_ref(value) is None and os.path.exists(value):
        return os.path.abspath(value)
    return value


def revision_of(model: object) -> str | None:
    """The hub commit a loaded model came from (transformers keeps it on the config), else None."""
    config = getattr(model, "config", None)
    revision = getattr(config, "_commit_hash", None)
    return revision if isinstance(revision, str) and revision else None


def write_stage_record(
    folder: str | Path, result: dict, base_model: str, config: dict, revision: str | None = None
) -> Path:
    """Write `folder/rewardkit_stage.json` with local paths made absolute."""
    config = {**config, "dataset": dict(config.get("dataset") or {})}
    for path in _PATH_FIELDS:
        holder = config
        for key in path[:-1]:
            holder = holder[key]
        if path[-1] in holder:
            holder[path[-1]] = absolute_if_local(holder[path[-1]])
    record = {
        **result,
        "output_dir": os.path.abspath(result.get("output_dir") or folder),
        "model": absolute_if_local(result.get("model")),
        "base_model": absolute_if_local(base_model),
        "base_model_revision": revision,
        "working_dir": os.getcwd(),
        "config": config,
    }
    return atomic_write_json(Path(folder) / STAGE_FILE, record, inside=folder)


def rebased(record: dict, folder: str | Path) -> dict:
    """`record` with the paths inside the run it recorded moved to `folder`, where it is read now (a run folder
    copied or moved elsewhere names its own best/ and model, never the original's)."""
    old, new = record.get("output_dir"), os.path.abspath(folder)
    if not isinstance(old, str) or not old or old == new:
        return record

    def move(value: object) -> object:
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, str) and (value == old or value.startswith(old.rstrip(os.sep) + os.sep)):
            return new + value[len(old) :]
        return value

    moved = move(record)
    return moved if isinstance(moved, dict) else record


def read_stage_record(path: str | Path) -> StageRecord:
    """A stage record, validated like a config; any problem is one ConfigError naming the file and the field.
    Paths inside the recorded run are read relative to the folder the record is in now."""
    data = read_json(path)
    if isinstance(data, dict):
        data = rebased(data, Path(path).parent)
    return validate_record(data, str(path))


def validate_record(data: object, where: str) -> StageRecord:
    """Validate the parsed JSON of a stage record."""
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        validate(StageConfig, data["config"], where, prefix="config")  # the config's own messages and hint
    return validate_params(StageRecord, data, where, hint=_HINT)
