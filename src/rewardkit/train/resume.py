"""Run folders: the lock of a running `rewardkit train`, refusing a folder that holds a run, and resuming one.

A stage's output folder holds a run once a stage started there (the STARTED marker), finished there
(`rewardkit_stage.json`) or left a `checkpoint-N/`. A new run into it is refused unless the user says
`--resume` (continue from the latest complete checkpoint) or `--overwrite` (start over: the run's own entries
are deleted, each folder named in one line). Light module: no torch, transformers or trl.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator

from rewardkit.core.errors import ConfigError
from rewardkit.train.config import STAGE_FILE

LOCK = ".rewardkit-train.lock"
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
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
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
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("model"), str) else None


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
            os.replace(path, target)
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


# --- the lock ------------------------------------------------------------------------------------------------


def _alive(owner: dict) -> bool:
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname():
        return True  # a shared filesystem: another machine's process cannot be checked from here
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return False  # our own leftover (a run of this process that was interrupted in-process)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lock(path: Path) -> dict:
    """The lock's owner record ({} when unreadable: a lock cut short by a kill)."""
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def live_owner(folder: Path) -> dict | None:
    """The owner of a live lock in `folder` or one of its sub-folders (a pipeline's stages), else None."""
    for lock in [folder / LOCK, *folder.glob(f"*/{LOCK}")]:
        if lock.is_file():
            owner = read_lock(lock)
            if owner and _alive(owner):
                return {**owner, "folder": str(lock.parent)}
    return None


def in_use(owner: dict) -> ConfigError:
    """The refusal for a folder a running train holds."""
    return ConfigError(
        f"{owner['folder']} is in use by a running `rewardkit train` (pid {owner.get('pid')} on "
        f"{owner.get('host')}, started {owner.get('started')}).",
        hint="wait for it to finish, or give this run another output_dir.",
    )


@contextmanager
def locked(folder: Path, say: Callable[[str], object]) -> Iterator[None]:
    """Hold `folder`'s lock (created with O_EXCL; a dead owner's lock is taken over with one line). A folder made
    for the lock and still empty at the end (a config error) is removed again."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # leaf first
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = read_lock(path)
            if owner and _alive(owner):
                raise in_use({**owner, "folder": str(folder)}) from None
            if owner.get("pid") != os.getpid():
                say(f"{folder}: removed the stale lock of a run that is no longer running (pid {owner.get('pid')}).")
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(me, handle)
        break
    else:
        raise ConfigError(f"{folder}: could not take the run lock {path}.", hint="remove it if no run uses the folder.")
    try:
        yield
    finally:
        if read_lock(path).get("pid") == os.getpid():
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        for created in made:
            try:
                created.rmdir()  # only while nothing else was written
            except OSError:
                break


@contextmanager
def locked_all(folders: list[Path], say: Callable[[str], object]) -> Iterator[None]:
    """Hold the locks of several folders (a pipeline's stages) at once."""
    with ExitStack() as stack:
        for folder in dict.fromkeys(folders):
            stack.enter_context(locked(folder, say))
        yield


def overwrite(folder: Path, say: Callable[[str], object]) -> None:
    """Delete a run from `folder` (everything but the lock), saying so; refuses the working directory's ancestors."""
    here = Path.cwd().resolve()
    resolved = folder.resolve()
    if resolved == here or resolved in here.parents:
        raise ConfigError(
            f"--overwrite would delete {folder}, which contains the working directory.",
            hint="give the stage its own output_dir.",
        )
    for child in folder.iterdir():
        if child.name == LOCK:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    say(f"overwrite: deleted the earlier run in {folder}.")
