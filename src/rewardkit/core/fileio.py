"""Safe atomic file writes (symlink-aware, mode-preserving), output folders a command owns, strict JSON out.
Reading users' files is `reading`'s (re-exported here)."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

from rewardkit.core import written
from rewardkit.core.errors import DataError

# The readers live in `reading` (below `tiny`); fileio is where callers find every read and write.
from rewardkit.core.reading import (
    DEFAULT_MAX_INPUT_BYTES as DEFAULT_MAX_INPUT_BYTES,
)
from rewardkit.core.reading import (
    MAX_INPUT_ENV as MAX_INPUT_ENV,
)
from rewardkit.core.reading import file_kind as _kind
from rewardkit.core.reading import (
    max_input_bytes as max_input_bytes,
)
from rewardkit.core.reading import (
    read_input_bytes as read_input_bytes,
)
from rewardkit.core.reading import (
    read_json as read_json,
)
from rewardkit.core.reading import (
    read_jsonl as read_jsonl,
)
from rewardkit.core.reading import (
    read_records as read_records,
)
from rewardkit.core.reading import (
    read_text as read_text,
)

_LINK_HINT = "remove the link or replace it with a copy (rewardkit never makes links in a run folder)."
_NOT_FILE_HINT = "choose a file path; rewardkit writes files atomically and never replaces a FIFO or device."


def current_umask() -> int:
    """The process umask, read without changing it when /proc allows."""
    try:  # os.umask() can only be read by setting it, which races with other threads creating files
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _os_error(exc: OSError, path: Path, what: str, where: Path | None = None) -> DataError:
    """Turn an OSError a user can cause into a one-sentence DataError with a hint."""
    where, reason = where or path.parent, exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = f"choose a writable folder, or fix the permissions of {where}."
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason, hint = "the disk is full or over quota", f"free space on {where}, or choose another folder."
    elif exc.errno == errno.ENOTDIR:
        reason, hint = "a parent of it is a file, not a folder", "choose a path inside a folder."
    else:
        hint = "check the path and its folder."
    return DataError(f"{path}: cannot {what} ({reason}).", hint=hint)


def ensure_dir(path: str | Path, for_file: str | Path | None = None) -> Path:
    """Create `path` and its parents with umask modes; DataError if not a writable directory, naming `for_file`
    (the file about to be written there) when given: the write that failed, not only its folder."""
    path = Path(path)
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent  # find the first existing ancestor: mkdir's ENOTDIR/EEXIST would not name it
    if probe.exists() and not probe.is_dir():
        raise DataError(
            f"{probe}: exists and is not a folder, so {path} cannot be created there.",
            hint="choose another output folder or move that file away.",
        )
    try:
        os.makedirs(path, exist_ok=True)  # mode 0o777 is filtered by the umask (and default ACLs) by the kernel
    except OSError as exc:
        raise _os_error(exc, path, "create the folder", path) from None
    if not os.access(path, os.W_OK | os.X_OK):
        reason = "read-only file system" if os.statvfs(path).f_flag & os.ST_RDONLY else "permission denied"
        if for_file is not None:  # e.g. a folder remounted read-only under a running job: say what it stopped
            raise DataError(
                f"{for_file}: cannot be written: its folder {path} is not writable ({reason}).",
                hint=f"make {path} writable again (its permissions, or remount the disk read-write), "
                "or choose another folder.",
            )
        raise DataError(
            f"{path}: the folder is not writable ({reason}).",
            hint="choose a writable output folder, or fix its permissions.",
        )
    return path


def make_temp_dir(parent: str | Path, prefix: str, *, inside: str | Path | None = None) -> Path:
    """A new empty directory in `parent` with the umask's mode (mkdtemp alone gives 0700); `inside`: the run folder
    it is in, whose record then holds it as scratch (a kill leaves it to the run's next --overwrite)."""
    parent = ensure_dir(parent)
    # A hex name, not mkdtemp's letters: a model is loaded from this folder before it is renamed, and bert_score
    # takes any path containing "t5" for a T5 model (a random "...t5..." made smoke runs fail now and then).
    for _ in range(100):
        tmp = parent / f"{prefix}{secrets.token_hex(8)}.tmp"
        if inside is not None:
            written.note(inside, tmp, "scratch")
        try:
            os.mkdir(tmp, 0o777)  # the umask applies
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise _os_error(exc, parent, "create a temporary folder", parent) from None
    raise _os_error(
        FileExistsError(errno.EEXIST, "no free temporary name"), parent, "create a temporary folder", parent
    )


def _write_target(path: Path) -> tuple[Path, os.stat_result | None]:
    """The real file to replace (symlinks followed) and its stat; refuse anything but a regular file."""
    target = Path(os.path.realpath(path))  # follows chains; a dangling link yields the path it points to
    try:
        st = os.lstat(target)  # lstat: a remaining link means a loop, which realpath leaves unresolved
    except (FileNotFoundError, NotADirectoryError):  # a file as parent: ensure_dir names it
        return target, None
    except OSError as exc:
        raise _os_error(exc, target, "inspect the file") from None
    if not stat.S_ISREG(st.st_mode):
        shown = f"{path} (-> {target})" if str(target) != os.path.abspath(path) else str(path)
        raise DataError(
            f"{shown}: is {_kind(st.st_mode)}, not a regular file, so it cannot be written.", hint=_NOT_FILE_HINT
        )
    return target, st


def refuse_link_below(root: str | Path, path: str | Path) -> None:
    """Refuse a write or delete of `path` through a symlink between `root` and it (a run folder's entries are
    never links: rewardkit does not make them, so one there would carry the write out of the run)."""
    base = os.path.abspath(root)
    rel = os.path.relpath(os.path.abspath(path), base)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise DataError(f"{path}: is outside the run folder {root}, so it is not written.", hint=_LINK_HINT)
    current = base
    for part in Path(rel).parts:
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise DataError(
                f"{current}: is a symlink to {os.path.realpath(current)}; files in a run folder are written in "
                "place, never through a link.",
                hint=_LINK_HINT,
            )


def check_output(path: str | Path) -> Path:
    """Refuse now what an atomic write would refuse later (a directory, FIFO, device): call before long work."""
    return _write_target(Path(path))[0]


def atomic_write_bytes(path: str | Path, data: bytes, *, inside: str | Path | None = None) -> Path:
    """Write `data` to `path` so readers see the old file or the whole new one, never a part. `inside`: the run
    folder `path` belongs to; a symlink below it is refused instead of followed (a user's own file outside a run
    may be a link, and the file it names is replaced)."""
    path = Path(path)
    if inside is not None:
        refuse_link_below(inside, path)
        written.set_aside_unrecorded(inside, path)  # a file the run did not write is kept, never replaced
    target, old = _write_target(path)
    ensure_dir(target.parent, for_file=path)
    if inside is not None:  # recorded first: a kill mid-write leaves the earlier file, whose size was recorded then
        written.note(inside, path, "file", len(data), written.data_digest(data))
    tmp: str | None = None
    try:
        # Temp next to the target (same file system, so os.replace is atomic); prefix capped for NAME_MAX.
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:200]}.", suffix=".tmp", dir=target.parent)
        try:
            if old is not None:  # keep the owner when allowed (root rewriting a user's file); before chmod,
                with contextlib.suppress(OSError):  # as chown clears setuid bits
                    os.fchown(fd, old.st_uid, old.st_gid)
            os.chmod(tmp, stat.S_IMODE(old.st_mode) if old else 0o666 & ~current_umask())  # mkstemp made it 0600
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)  # data on disk before the rename makes it visible
        finally:
            os.close(fd)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise _os_error(exc, path, "write the file") from None
    finally:
        if tmp is not None:  # any failure, KeyboardInterrupt included: never leave a temp file behind
            Path(tmp).unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | Path, text: str, *, inside: str | Path | None = None) -> Path:
    """Atomically write `text` as UTF-8 (`inside`: see atomic_write_bytes)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates, e.g. from a JSON "\ud800" escape in the input
        raise DataError(
            f"{path}: cannot write: the text has an unpaired surrogate at offset {exc.start}, which UTF-8 cannot hold.",
            hint="clean the text (str.encode(errors='replace')).",
        ) from None
    return atomic_write_bytes(path, data, inside=inside)


def nonfinite_path(obj: object, where: str = "$") -> str | None:
    """Dotted key path (from `where`) of the first NaN/Infinity float in JSON-like `obj`, or None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = nonfinite_path(value, f"{where}.{key}")
        if found:
            return found
    return None


def nulls_for_nonfinite(obj: object) -> object:
    """A copy of JSON-like data with NaN/Infinity floats as None (inputs may hold them; strict JSON cannot)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: nulls_for_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [nulls_for_nonfinite(v) for v in obj]
    return obj


def dumps_strict(obj: object, indent: int | None = None) -> str:
    """JSON text that strict parsers accept: DataError on NaN/Infinity instead of writing them."""
    try:
        return json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False)
    except ValueError:
        where = nonfinite_path(obj)
        if where is None:
            raise  # circular reference etc.: a programming error, not bad data
        raise DataError(
            f"the value at {where} is NaN or Infinity, which strict JSON cannot hold.",
            hint="replace it with None or a finite number.",
        ) from None


def atomic_write_json(path: str | Path, data: object, *, inside: str | Path | None = None) -> Path:
    """Atomically write `data` as indented strict UTF-8 JSON (`inside`: see atomic_write_bytes)."""
    try:
        text = dumps_strict(data, indent=2)
    except DataError as exc:
        raise exc.within(f"{path}: cannot write") from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: \u escapes keep the data and stay valid UTF-8
            text = json.dumps(data, indent=2, allow_nan=False)
    return atomic_write_text(path, text + "\n", inside=inside)


def atomic_write_jsonl(path: str | Path, rows: list[dict], *, inside: str | Path | None = None) -> Path:
    """Atomically write one strict JSON object per line; NaN/Infinity in the rows are written as null (`inside`:
    see atomic_write_bytes)."""
    try:
        text = "".join(dumps_strict(nulls_for_nonfinite(row)) + "\n" for row in rows)
    except TypeError as exc:  # a value JSON has no form for (a timestamp from parquet, bytes)
        raise DataError(f"{path}: cannot write ({exc}).", hint="convert such columns to strings or numbers.") from None
    return atomic_write_text(path, text, inside=inside)


def atomic_replace_dir(tmp_dir: Path, final: Path, *, inside: str | Path | None = None) -> Path:
    """Move a fully written temp dir into place, replacing an older `final` dir (its mode is kept). `inside`:
    the run folder `final` belongs to; a symlink below it is refused instead of followed, the new folder's files
    are recorded as the run's, and a file of the old one the run did not write is kept in the new one."""
    tmp_dir, final = Path(tmp_dir), Path(final)
    if inside is not None:
        refuse_link_below(inside, final)
    target = Path(os.path.realpath(final))  # a symlinked folder keeps its link; the folder it points to is replaced
    staged: Path | None = None
    try:
        old = os.lstat(target) if os.path.lexists(target) else None
        if old is not None and not stat.S_ISDIR(old.st_mode):
            raise DataError(
                f"{final}: is {_kind(old.st_mode)}, not a folder, so it cannot be replaced by one.",
                hint="choose a folder path.",
            )
        if tmp_dir.resolve().parent != target.parent:  # os.replace is atomic only within one folder/file system
            staged = make_temp_dir(target.parent, f".{target.name}.", inside=inside)
            shutil.copytree(tmp_dir, staged, dirs_exist_ok=True)
        src = staged or tmp_dir
        os.chmod(src, stat.S_IMODE(old.st_mode) if old else 0o777 & ~current_umask())  # mkdtemp made it 0700
        trash = target.with_name(f".{target.name}.old")
        lines: list[written.Line] = []
        if inside is not None:
            copies = frozenset(written.keep_unrecorded(inside, final, src) if old is not None else ())
            lines = written.tree_lines(src, final, copies)
            written.note_many(inside, [*lines, (trash, "scratch", None, None)])  # before: a kill after the swap
        if old is None:
            os.replace(src, target)
        else:
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(target, trash)
            try:
                os.replace(src, target)
            except BaseException:
                os.replace(trash, target)  # put the old folder back rather than leave none
                raise
            shutil.rmtree(trash, ignore_errors=True)
        if inside is not None:  # the old folder's files are forgotten; the temporary names are gone
            written.note_many(inside, [(final, "gone", None), *lines, (src, "gone", None), (trash, "gone", None)])
        if staged is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    except OSError as exc:
        raise _os_error(exc, final, "replace the folder") from None
    finally:
        if staged is not None and staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    return final


def append_jsonl(path: str | Path, row: dict, *, inside: str | Path | None = None) -> Path:
    """Append one strict JSON line (NaN/Infinity as null) with a single O_APPEND write: concurrent appenders never
    interleave within a line, and a crash can cut only the last line (readers skip a line that does not parse).
    A symlink or anything but a regular file at `path` is refused, never written through. `inside`: the run
    folder, whose record then holds the file as one that grows."""
    path = Path(path)
    try:
        line = (dumps_strict(nulls_for_nonfinite(row)) + "\n").encode("utf-8", errors="backslashreplace")
    except TypeError as exc:
        raise DataError(f"{path}: cannot write ({exc}).", hint="log numbers and strings only.") from None
    ensure_dir(path.parent, for_file=path)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise DataError(f"{path}: is a symlink; it is not written through.", hint=_NOT_FILE_HINT)
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise DataError(f"{path}: is not a regular file, so it cannot be appended to.", hint=_NOT_FILE_HINT)
    if inside is not None:
        if not written.grows(inside, path):
            written.note(inside, path, "appended")
        written.own_inode(path)  # a hard link to it elsewhere (a backup) does not grow with the run's file
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o666 & ~current_umask())  # O_NOFOLLOW: a link made since lstat is refused too
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"{path}: is a symlink; it is not written through.", hint=_NOT_FILE_HINT) from None
        raise _os_error(exc, path, "append to the file") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DataError(f"{path}: is not a regular file, so it cannot be appended to.", hint=_NOT_FILE_HINT)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise _os_error(exc, path, "append to the file") from None
    finally:
        os.close(fd)
    return path
