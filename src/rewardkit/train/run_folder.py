"""What a `rewardkit train` run writes in its folder, so that it deletes or replaces only that.

A stage folder holds the run's entries, known by name: its markers and record (`.rewardkit-run`,
`rewardkit_stage.json`, the lock), `checkpoint-N/`, `final/`, `merged/`, `incomplete/`, `eval_rows.jsonl`,
`log_history.jsonl`, `trainer_state.json`, TRL's model card `README.md`, the callbacks' folders (`inference/`, `best/`, `adapters/` or the names the
config gives them) and the hidden temporary entries of an interrupted atomic write. A pipeline's folder holds
its stages' folders and `summary.json`. These names decide only whether a folder may take a new run. What a run
wrote, file by file, is in its record (core/written.py, `.rewardkit-written.jsonl`): `--overwrite` checks the
whole tree against it and deletes exactly the recorded files; anything else, at the top or inside the run's own
folders (a note in `inference/`, a file the user replaced), is refused in one line first and nothing is deleted,
as is a run folder that kept no record. `--resume` leaves the user's files alone. rewardkit never
makes a symlink in a run folder, so a link among the run's entries is refused rather than written or deleted
through. Light module: no torch, transformers or trl.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rewardkit.core import written
from rewardkit.core.errors import ConfigError
from rewardkit.core.output_dirs import OUTPUT_MARKER
from rewardkit.core.output_dirs import foreign_entry as fileio_foreign_entry
from rewardkit.core.reading import file_kind
from rewardkit.train.config import StageConfig
from rewardkit.train.resume import RECORD, STARTED
from rewardkit.train.run_lock import LOCK

_CHECKPOINT = re.compile(r"^checkpoint-\d+$")
STAGE_FILES = frozenset(
    {
        LOCK,
        STARTED,
        RECORD,
        OUTPUT_MARKER,
        written.RECORD,
        "eval_rows.jsonl",
        "README.md",
        "log_history.jsonl",
        "trainer_state.json",
    }
)
STAGE_DIRS = frozenset({"final", "merged", "incomplete", "runs"})  # runs/: TensorBoard's default logging folder
PIPELINE_FILES = frozenset({LOCK, OUTPUT_MARKER, written.RECORD, "summary.json"})
# The folders each built-in callback writes under output_dir: {callback: {parameter: default}}.
_CALLBACK_DIRS = {
    "lora_save": {"output_dir": "adapters"},
    "checkpoint_inference": {"sidecar": "inference"},
    "best_checkpoint": {"sidecar": "inference", "best_dir": "best", "adapters_dir": "adapters"},
}


@dataclass(frozen=True)
class RunNames:
    """The top-level names a run writes in a folder: files, and folders (checkpoint-N always)."""

    files: frozenset[str]
    dirs: frozenset[str]

    def owns(self, entry: Path) -> bool:
        """Whether `entry` is one a run wrote: a known name of the right kind, never a symlink."""
        if entry.is_symlink():
            return False
        name = entry.name
        if name.startswith(".") and (name.endswith(".tmp") or name.endswith(".old")):
            # a temporary file or folder of an atomic write (`.<name>.<random>.tmp`, `.<name>.old`)
            stem = name[1:-4] if name.endswith(".old") else name[1:].rsplit(".", 2)[0]
            return stem in self.files or stem in self.dirs or bool(_CHECKPOINT.match(stem))
        if name in self.files:
            return not entry.is_dir()
        return (name in self.dirs or bool(_CHECKPOINT.match(name))) and entry.is_dir()

    def named(self, entry: Path) -> bool:
        """Whether `entry`'s name is one the run writes (whatever it is on disk)."""
        name = entry.name
        return name in self.files or name in self.dirs or bool(_CHECKPOINT.match(name))


def _first_part(value: Any) -> str | None:
    """The top-level name of a folder a callback writes under output_dir (None: absolute or not a name)."""
    if not isinstance(value, str) or not value.strip() or os.path.isabs(value):
        return None
    parts = Path(os.path.normpath(value)).parts
    return parts[0] if parts and parts[0] not in (".", "..") else None


def stage_names(stage: StageConfig) -> RunNames:
    """What a run of `stage` writes in its output_dir."""
    dirs = set(STAGE_DIRS)
    for callback in stage.callbacks:
        for param, default in _CALLBACK_DIRS.get(str(callback.get("name")), {}).items():
            value = callback.get(param)
            name = _first_part(default if value is None else value)
            if name is not None:
                dirs.add(name)
    return RunNames(STAGE_FILES, frozenset(dirs))


def pipeline_names(stages: list[StageConfig], root: Path) -> RunNames:
    """What a pipeline writes in its own folder: summary.json and the stage folders inside it."""
    dirs = {s.folder.name for s in stages if s.folder.parent.resolve() == root.resolve()}
    return RunNames(PIPELINE_FILES, frozenset(dirs))


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


def foreign_entry(folder: Path, names: RunNames) -> Path | None:
    """The first entry of `folder` that no rewardkit run wrote, else None (fileio's check, with a run's names)."""
    return fileio_foreign_entry(folder, names.owns)


def link_entry(folder: Path, names: RunNames) -> Path | None:
    """The first symlink, named pipe, socket or device among the run's entries of `folder` or anywhere inside them,
    else None (a run writes only files and folders; a pipe there would block or fail a write mid-run)."""
    for entry in _entries(folder):
        if not names.named(entry) and not names.owns(entry):
            continue  # the user's: the run neither writes nor deletes it
        if _odd(entry):
            return entry
        if entry.is_dir():
            for top, subdirs, files in os.walk(entry):  # followlinks=False: a linked folder is listed, not entered
                for name in sorted(subdirs + files):
                    if _odd(Path(top) / name):
                        return Path(top) / name
    return None


def _odd(path: Path) -> bool:
    """Whether `path` is neither a regular file nor a folder (lstat: a link is odd)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def refuse_links(folder: Path, names: RunNames, where: str) -> None:
    """A ConfigError naming the first symlink (writes would follow it out of the run) or other non-file among the
    run's entries."""
    link = link_entry(folder, names)
    if link is not None and not link.is_symlink():
        raise ConfigError(
            f"{where}: {link} is {file_kind(os.lstat(link).st_mode)}; a run folder holds only the files and folders "
            "rewardkit writes, and a write there would block or fail mid-run.",
            hint="remove it (or move it out of the run folder), then run again.",
        )
    if link is not None:
        raise ConfigError(
            f"{where}: {link} is a symlink to {os.path.realpath(link)}; rewardkit never makes links in a run "
            "folder and does not write or delete through one.",
            hint="replace the link with a copy of what it points to (cp -rL), or remove it.",
        )


def refuse_foreign(folder: Path, names: RunNames, where: str, doing: str, hint: str) -> None:
    """A ConfigError naming the first entry of `folder` a run did not write (`doing`: what would touch it)."""
    entry = foreign_entry(folder, names)
    if entry is not None:
        kind = f"a symlink to {os.path.realpath(entry)}" if entry.is_symlink() else "not written by a rewardkit run"
        raise ConfigError(f"{where}: {doing} {folder}, but it holds {entry.name!r} ({kind}).", hint=hint)


def overwrite(folder: Path, names: RunNames, where: str, say: Callable[[str], object]) -> None:
    """Delete what the earlier run in `folder` wrote, by its record (core/written.py; never the lock), saying so.
    Anything there it did not write (a user's note inside inference/, a file replaced since), a folder whose run
    kept no record, and a folder that contains the working directory are refused first: nothing is deleted."""
    here = Path.cwd().resolve()
    resolved = folder.resolve()
    if resolved == here or resolved in here.parents:
        raise ConfigError(
            f"--overwrite would delete {folder}, which contains the working directory.",
            hint="give the stage its own output_dir.",
        )
    targets = [child for child in _entries(folder) if child.name != LOCK]
    if targets and not written.has_record(folder):
        raise ConfigError(
            f"{where}: --overwrite would delete the earlier run in {folder}, but that run kept no record of what "
            "it wrote (an older rewardkit), so nothing is deleted.",
            hint="delete the folder yourself (after moving out anything you keep), or give the run a new output_dir.",
        )
    found = written.first_unrecorded(folder, targets, frozenset({LOCK}))
    if found is not None:
        raise ConfigError(
            f"{where}: --overwrite would delete the earlier run in {folder}, but it holds "
            f"{found.path.relative_to(folder).as_posix()!r} ({found.why}).",
            hint="nothing was deleted; move that entry out of the folder (or give the run a new output_dir), "
            "then run again.",
        )
    written.remove_recorded(folder, targets, frozenset({LOCK}))
    say(f"overwrite: deleted the earlier run in {folder}.")
