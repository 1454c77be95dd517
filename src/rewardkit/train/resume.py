"""Run folders: whether a folder holds a run, and resuming one (the lock: run_lock; what a run owns there:
run_folder).

A stage's output folder holds a run once a stage claimed it (the STARTED marker, with the settings it trains
with), finished there (`rewardkit_stage.json`) or left a `checkpoint-N/`. A new run into it is refused unless the
user says `--resume` (continue from the latest complete checkpoint) or `--overwrite` (start over: the run's own
entries are deleted). Light module: no torch, transformers or trl.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable

from rewardkit.core.errors import ConfigError
from rewardkit.core.reading import read_run_json
from rewardkit.core.written import move_recorded
from rewardkit.train.config import STAGE_FILE
from rewardkit.train.record import rebased

STARTED = ".rewardkit-run"
RECORD = STAGE_FILE  # one name for the stage record (train.config)
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
LATEST = "latest"  # `--resume` without a path


def checkpoints(folder: Path) -> dict[int, Path]:
    """`checkpoint-N/` folders of a run by step."""
    if not folder.is_dir():
        return {}
    out = {}
    for child in folder.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and child.is_dir():
            out[int(match.group(1))] = child
    return dict(sorted(out.items()))


def incomplete_reason(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (None: complete). The Trainer writes trainer_state.json last."""
    state_file = checkpoint / "trainer_state.json"
    if not state_file.is_file():
        return "no trainer_state.json (the process died while saving it)"
    state = read_run_json(state_file)
    if state is None:
        return "trainer_state.json is cut short"
    match = _CHECKPOINT.match(checkpoint.name)
    if not isinstance(state, dict) or match is None or state.get("global_step") != int(match.group(1)):
        return "trainer_state.json does not belong to this checkpoint"
    return None


def holds_run(folder: Path) -> bool:
    """Whether a stage ran (or runs) in `folder`."""
    return (folder / STARTED).exists() or (folder / RECORD).exists() or bool(checkpoints(folder))


def finished_record(folder: Path) -> dict | None:
    """The stage record of a finished stage in `folder`, or None."""
    record = read_run_json(folder / RECORD)
    if not isinstance(record, dict) or not isinstance(record.get("model"), str):
        return None
    return rebased(record, folder)


def started_settings(folder: Path) -> dict | None:
    """The settings the run started in `folder` recorded in its STARTED marker (None: none recorded)."""
    marker = read_run_json(folder / STARTED)
    found = marker.get("settings") if isinstance(marker, dict) else None
    return found if isinstance(found, dict) else None


def latest_complete(folder: Path, say: Callable[[str], object]) -> Path | None:
    """The newest complete checkpoint-N of `folder`; each newer incomplete one is named in one line."""
    for path in reversed(checkpoints(folder).values()):
        reason = incomplete_reason(path)
        if reason is None:
            return path
        say(f"resume: skipping {path}: incomplete, {reason}; using the previous complete checkpoint.")
    return None


def set_aside_incomplete(folder: Path, after: int, say: Callable[[str], object]) -> None:
    """Move checkpoints newer than the resumed one to incomplete/ (the Trainer would save into them again)."""
    for step, path in checkpoints(folder).items():
        if step > after:
            target = folder / "incomplete" / f"{path.name}-{int(time.time())}"
            target.parent.mkdir(exist_ok=True)
            move_recorded(folder, path, target)
            say(f"resume: moved {path} (newer than the resumed checkpoint) to {target}.")


def checkpoint_arg(value: object, folder: Path, where: str, label: str) -> Path:
    """A `--resume PATH` / trainer.resume_from_checkpoint value checked: a complete checkpoint folder."""
    path = Path(str(value)).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"{where}: stage {label!r}: checkpoint {str(path)!r} to resume from does not exist.",
            hint=f"`--resume` alone takes the latest complete checkpoint-N of {folder}.",
        )
    reason = incomplete_reason(path)
    if reason is not None:
        raise ConfigError(
            f"{where}: stage {label!r}: checkpoint {path} is incomplete ({reason}).",
            hint="resume from an earlier checkpoint-N, or `--resume` alone to take the latest complete one.",
        )
    return path


def _previous(checkpoint: Path) -> Path | None:
    """The newest complete checkpoint of the same folder before `checkpoint`."""
    match = _CHECKPOINT.match(checkpoint.name)
    if match is None:
        return None
    earlier = [p for step, p in checkpoints(checkpoint.parent).items() if step < int(match.group(1))]
    return next((p for p in reversed(earlier) if incomplete_reason(p) is None), None)


def check_checkpoint_files(checkpoint: Path, where: str, label: str) -> None:
    """Refuse, in one line naming the file, a checkpoint whose optimizer, scheduler, scaler or RNG state torch
    cannot load (safely, as the Trainer will), and name the previous complete checkpoint to resume from."""
    import torch
    from transformers.trainer_pt_utils import safe_globals

    for path in sorted(checkpoint.iterdir()):
        if path.suffix not in (".pt", ".pth") or not path.is_file():
            continue
        try:
            with safe_globals():
                torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # any failure: torch's own text advises unsafe loading, which is never the fix here
            previous = _previous(checkpoint)
            raise ConfigError(
                f"{where}: stage {label!r}: {path} cannot be read (it is damaged or cut short), so training cannot "
                "continue from that checkpoint.",
                hint=f"resume from the previous complete checkpoint: --resume {previous}."
                if previous is not None
                else "no earlier complete checkpoint is left; --overwrite starts the stage over.",
            ) from None
