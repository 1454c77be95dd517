"""The lock of a running `rewardkit train` on its folders: taken atomically, never held by two processes.

The lock is the kernel's `flock` on `<folder>/.rewardkit-train.lock`, so it is released when its process dies
(a kill, a crash, a container stopped): a stale lock file is one no process holds, whatever PID it names
(containers reuse PIDs). The file says who holds it (pid, host, boot id and the process start time) for the
message a second run prints. Light module: no torch, transformers or trl.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator

from rewardkit.core import written
from rewardkit.core.errors import ConfigError
from rewardkit.core.reading import read_run_json

LOCK = ".rewardkit-train.lock"


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot (/proc/PID/stat field 22), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _me() -> dict:
    pid = os.getpid()
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "boot_id": _boot_id(),
        "process_start": _start_ticks(pid),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def read_lock(path: Path) -> dict:
    """The lock's owner record ({} when unreadable: a lock cut short by a kill)."""
    owner = read_run_json(path)
    return owner if isinstance(owner, dict) else {}


def _lock_error(exc: OSError, path: Path) -> ConfigError:
    return ConfigError(
        f"{path}: cannot take the run lock ({exc.strerror or exc}).",
        hint="put output_dir on a local, writable file system that supports file locks.",
    )


def _held(path: Path) -> bool:
    """Whether a live process holds the lock file at `path` (probed without taking it for long)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also releases the probe's shared lock
    return False


def live_owner(folder: Path) -> dict | None:
    """The owner of a held lock in `folder` or one of its sub-folders (a pipeline's stages), else None."""
    for lock in [folder / LOCK, *folder.glob(f"*/{LOCK}")]:
        if lock.is_file() and not lock.is_symlink() and _held(lock):
            return {**read_lock(lock), "folder": str(lock.parent)}
    return None


def in_use(owner: dict) -> ConfigError:
    """The refusal for a folder a running train holds."""
    return ConfigError(
        f"{owner['folder']} is in use by a running `rewardkit train` (pid {owner.get('pid')} on "
        f"{owner.get('host')}, started {owner.get('started')}).",
        hint="wait for it to finish, or give this run another output_dir.",
    )


def _acquire(folder: Path, path: Path) -> tuple[int, dict]:
    """An fd holding the exclusive flock on the file `path` names now, and the record found in it."""
    for _ in range(100):  # a retry only when a releasing owner unlinked the file between our open and flock
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ConfigError(
                    f"{path}: is a symlink; a run folder's lock is a plain file rewardkit writes.",
                    hint="remove the link.",
                ) from None
            raise _lock_error(exc, path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise in_use({**read_lock(path), "folder": str(folder)}) from None
        except OSError as exc:
            os.close(fd)
            raise _lock_error(exc, path) from None
        try:
            now = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            now = None
        mine = os.fstat(fd)
        if now is not None and (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
            return fd, read_lock(path)
        os.close(fd)  # we locked a file its owner had just unlinked: take the one the path names now
    raise ConfigError(f"{folder}: could not take the run lock {path}.", hint="remove it if no run uses the folder.")


@contextmanager
def locked(folder: Path, say: Callable[[str], object]) -> Iterator[None]:
    """Hold `folder`'s lock; a lock file no process holds (its run died) is taken over with one line. A folder
    made for the lock and still empty at the end (a config error) is removed again."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # leaf first
    above = (made[-1] if made else folder).parent
    if made and written.has_record(above):  # a stage folder made inside a demo/--smoke folder: that folder's
        written.note_many(above, [(p, "dir", None) for p in reversed(made)])  # next run may delete it
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    fd, old = _acquire(folder, path)
    try:
        if old:
            say(f"{folder}: removed the stale lock of a run that is no longer running (pid {old.get('pid')}).")
        data = json.dumps(_me()).encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        yield
    finally:
        try:
            path.unlink()  # before closing: a process waiting on this file then sees it gone and retries
        except OSError:  # gone, or the folder turned read-only: the error in flight (the failed write) is the news
            pass
        os.close(fd)
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
