"""Safe atomic file writes (symlink-aware, mode-preserving) and strict, bounded JSON/JSONL reading (regular files
and pipes, never devices; at most REWARDKIT_MAX_INPUT_BYTES)."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError, RewardkitError

_NOT_FILE_HINT = "Hint: choose a file path; rewardkit writes files atomically and never replaces a FIFO or device."
_REGEN_HINT = "Hint: regenerate it or delete it."
# Input files are read whole: a limit stops a runaway read (a huge or endless file) with a clear error.
MAX_INPUT_ENV = "REWARDKIT_MAX_INPUT_BYTES"
DEFAULT_MAX_INPUT_BYTES = 2 * 1024 ** 3
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symlink loop"),
          (stat.S_ISREG, "a file"))


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


def _kind(mode: int) -> str:
    """Human name of a file type."""
    return next((name for test, name in _KINDS if test(mode)), "an unknown kind of file")


def _os_error(exc: OSError, path: Path, what: str, where: Path | None = None) -> DataError:
    """Turn an OSError a user can cause into a one-sentence DataError with a hint."""
    where, reason = where or path.parent, exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = f"Hint: choose a writable folder, or fix the permissions of {where}."
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason, hint = "the disk is full or over quota", f"Hint: free space on {where}, or choose another folder."
    elif exc.errno == errno.ENOTDIR:
        reason, hint = "a parent of it is a file, not a folder", "Hint: choose a path inside a folder."
    else:
        hint = "Hint: check the path and its folder."
    return DataError(f"{path}: cannot {what} ({reason}). {hint}")


def ensure_dir(path: str | Path) -> Path:
    """Create `path` and its parents with umask modes; DataError if not a writable directory."""
    path = Path(path)
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent  # find the first existing ancestor: mkdir's ENOTDIR/EEXIST would not name it
    if probe.exists() and not probe.is_dir():
        raise DataError(f"{probe}: exists and is not a folder, so {path} cannot be created there. "
                        "Hint: choose another output folder or move that file away.")
    try:
        os.makedirs(path, exist_ok=True)  # mode 0o777 is filtered by the umask (and default ACLs) by the kernel
    except OSError as exc:
        raise _os_error(exc, path, "create the folder", path) from None
    if not os.access(path, os.W_OK | os.X_OK):
        reason = "read-only file system" if os.statvfs(path).f_flag & os.ST_RDONLY else "permission denied"
        raise DataError(f"{path}: the folder is not writable ({reason}). "
                        "Hint: choose a writable output folder, or fix its permissions.")
    return path


def make_temp_dir(parent: str | Path, prefix: str) -> Path:
    """A new empty directory in `parent` with the umask's mode (mkdtemp alone gives 0700)."""
    parent = ensure_dir(parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=parent))
        os.chmod(tmp, 0o777 & ~current_umask())
    except OSError as exc:
        raise _os_error(exc, parent, "create a temporary folder", parent) from None
    return tmp


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
        raise DataError(f"{shown}: is {_kind(st.st_mode)}, not a regular file, so it cannot be written. "
                        f"{_NOT_FILE_HINT}")
    return target, st


def check_output(path: str | Path) -> Path:
    """Refuse now what an atomic write would refuse later (a directory, FIFO, device): call before long work."""
    return _write_target(Path(path))[0]


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` so readers see the old file or the whole new one, never a part."""
    path = Path(path)
    target, old = _write_target(path)
    ensure_dir(target.parent)
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
                view = view[os.write(fd, view):]
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


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomically write `text` as UTF-8."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates, e.g. from a JSON "\ud800" escape in the input
        raise DataError(f"{path}: cannot write: the text has an unpaired surrogate at offset {exc.start}, which "
                        "UTF-8 cannot hold. Hint: clean the text (str.encode(errors='replace')).") from None
    return atomic_write_bytes(path, data)


OUTPUT_MARKER = ".rewardkit-output"  # in a folder a command owns and empties on its next run; names the command


def _marker_owner(marker: Path) -> str | None:
    try:
        first = marker.read_text(encoding="utf-8").split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        return None
    _, _, rest = first.partition("`")
    return rest.partition("`")[0] or None


def claim_output_dir(root: Path, owner: str, refuse: str, *, clear: tuple[str, ...] | None = None,
                     delete: bool = True, write_marker: bool = True) -> Path:
    """Make `root` the output folder of `owner` (e.g. "rewardkit demo") and return it.

    A non-empty folder `owner` did not write (no marker naming it) is refused with the ConfigError `refuse`.
    One it wrote is emptied of an earlier run (all of it, or only the `clear` entries; `delete=False` keeps
    everything, for the ranks of a launch that are not the main process); the marker is written unless
    `write_marker=False` (again: not the main process).
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()) and _marker_owner(root / OUTPUT_MARKER) != owner:
        raise ConfigError(refuse)
    if delete:
        for target in ([root / name for name in clear] if clear is not None else [root]):
            shutil.rmtree(target, ignore_errors=True)
    ensure_dir(root)
    if write_marker:
        atomic_write_text(root / OUTPUT_MARKER, f"written by `{owner}`; its next run empties this folder\n")
    return root


def nonfinite_path(obj: Any, where: str = "$") -> str | None:
    """Dotted key path (from `where`) of the first NaN/Infinity float in JSON-like `obj`, or None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = nonfinite_path(value, f"{where}.{key}")
        if found:
            return found
    return None


def nulls_for_nonfinite(obj: Any) -> Any:
    """A copy of JSON-like data with NaN/Infinity floats as None (inputs may hold them; strict JSON cannot)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: nulls_for_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [nulls_for_nonfinite(v) for v in obj]
    return obj


def dumps_strict(obj: Any, indent: int | None = None) -> str:
    """JSON text that strict parsers accept: DataError on NaN/Infinity instead of writing them."""
    try:
        return json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False)
    except ValueError:
        where = nonfinite_path(obj)
        if where is None:
            raise  # circular reference etc.: a programming error, not bad data
        raise DataError(f"the value at {where} is NaN or Infinity, which strict JSON cannot hold. "
                        "Hint: replace it with None or a finite number.") from None


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Atomically write `data` as indented strict UTF-8 JSON."""
    try:
        text = dumps_strict(data, indent=2)
    except DataError as exc:
        raise DataError(f"{path}: cannot write: {exc}") from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: \u escapes keep the data and stay valid UTF-8
            text = json.dumps(data, indent=2, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def atomic_write_jsonl(path: str | Path, rows: list[dict]) -> Path:
    """Atomically write one strict JSON object per line; NaN/Infinity in the rows are written as null."""
    try:
        text = "".join(dumps_strict(nulls_for_nonfinite(row)) + "\n" for row in rows)
    except TypeError as exc:  # a value JSON has no form for (a timestamp from parquet, bytes)
        raise DataError(f"{path}: cannot write ({exc}). Hint: convert such columns to strings or numbers.") from None
    return atomic_write_text(path, text)


def atomic_replace_dir(tmp_dir: Path, final: Path) -> Path:
    """Move a fully written temp dir into place, replacing an older `final` dir (its mode is kept)."""
    tmp_dir, final = Path(tmp_dir), Path(final)
    target = Path(os.path.realpath(final))  # a symlinked folder keeps its link; the folder it points to is replaced
    staged: Path | None = None
    try:
        old = os.lstat(target) if os.path.lexists(target) else None
        if old is not None and not stat.S_ISDIR(old.st_mode):
            raise DataError(f"{final}: is {_kind(old.st_mode)}, not a folder, so it cannot be replaced by one. "
                            "Hint: choose a folder path.")
        if tmp_dir.resolve().parent != target.parent:  # os.replace is atomic only within one folder/file system
            staged = make_temp_dir(target.parent, f".{target.name}.")
            shutil.copytree(tmp_dir, staged, dirs_exist_ok=True)
        src = staged or tmp_dir
        os.chmod(src, stat.S_IMODE(old.st_mode) if old else 0o777 & ~current_umask())  # mkdtemp made it 0700
        if old is None:
            os.replace(src, target)
        else:
            trash = target.with_name(f".{target.name}.old")
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(target, trash)
            try:
                os.replace(src, target)
            except BaseException:
                os.replace(trash, target)  # put the old folder back rather than leave none
                raise
            shutil.rmtree(trash, ignore_errors=True)
        if staged is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    except OSError as exc:
        raise _os_error(exc, final, "replace the folder") from None
    finally:
        if staged is not None and staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    return final


def max_input_bytes() -> int:
    """The largest input file read (MAX_INPUT_ENV, default DEFAULT_MAX_INPUT_BYTES): a runaway read must stop."""
    raw = os.environ.get(MAX_INPUT_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_INPUT_BYTES
    if not raw.isascii() or not raw.isdigit() or int(raw) <= 0:
        raise DataError(f"{MAX_INPUT_ENV}={raw!r}: expected a positive number of bytes. Hint: e.g. "
                        f"{MAX_INPUT_ENV}={4 * 1024 ** 3} for 4 GiB, or unset it for the default.")
    return int(raw)


_READ_HINT = "pass a readable JSON/JSONL file (check the path)."


def _too_large(path: Path, size: str, limit: int, error: type[RewardkitError]) -> RewardkitError:
    return error(f"{path}: {size} bytes, over the input limit of {limit} bytes. Hint: split the file, "
                 f"or raise the limit with {MAX_INPUT_ENV}=<bytes> where the memory allows (JSON takes "
                 "several times its file size in memory).")


def _input_error(path: Path, exc: OSError, error: type[RewardkitError], hint: str) -> RewardkitError:
    why = {errno.ENOENT: "the file does not exist", errno.EISDIR: "is a directory, not a file",
           errno.EACCES: "permission denied when reading"}.get(exc.errno or -1, f"cannot read ({exc.strerror or exc})")
    return error(f"{path}: {why}. Hint: {hint}")


def _check_readable_kind(path: Path, mode: int, error: type[RewardkitError], hint: str) -> None:
    """Regular files and pipes (`--input <(zcat rows.jsonl.gz)`) are read; a device or socket is refused:
    reading /dev/zero or /dev/urandom never ends."""
    if stat.S_ISDIR(mode):
        raise error(f"{path}: is a directory, not a file. Hint: {hint}")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise error(f"{path}: is {_kind(mode)}, not a regular file or pipe, so it is not read (it may never "
                    "end). Hint: save the data to a file first and pass that file.")


def read_input_bytes(path: str | Path, *, error: type[RewardkitError] = DataError, max_bytes: int | None = None,
                     hint: str = _READ_HINT) -> bytes:
    """The bytes of a regular file or pipe, at most `max_bytes` (default max_input_bytes()) of them; a device or
    socket is refused and a missing or unreadable file is one `error` naming it."""
    path = Path(path)
    limit = max_input_bytes() if max_bytes is None else max_bytes
    try:
        _check_readable_kind(path, os.stat(path).st_mode, error, hint)  # before opening: opening a device can act
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _input_error(path, exc, error, hint) from None
    try:
        st = os.fstat(fd)
        _check_readable_kind(path, st.st_mode, error, hint)  # swapped between the stat and the open
        if st.st_size > limit:
            raise _too_large(path, str(st.st_size), limit, error)
        # A regular file in one read (joining one chunk copies nothing: memory stays at the file's size).
        size = st.st_size + 1 if stat.S_ISREG(st.st_mode) else 1 << 24
        chunks, total = [], 0
        while total <= limit:  # a pipe (or a growing file) is cut off at the limit, not read to its end
            chunk = os.read(fd, min(max(size, 1 << 16), limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise _too_large(path, f"more than {limit}", limit, error)
        return b"".join(chunks)
    except OSError as exc:
        raise _input_error(path, exc, error, hint) from None
    finally:
        os.close(fd)


def read_text(path: Path, *, error: type[RewardkitError] = DataError, max_bytes: int | None = None,
              hint: str = _READ_HINT) -> str:
    """File contents as UTF-8 text (a leading BOM dropped), read bounded by read_input_bytes; every user-caused
    failure is one `error` naming the file: missing, a directory or device, unreadable, too large, or not UTF-8
    (with the line)."""
    data = read_input_bytes(path, error=error, max_bytes=max_bytes, hint=hint)
    try:
        return data.decode("utf-8-sig")  # -sig: files saved by Windows editors start with a BOM
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}). "
                    "Hint: save the file as UTF-8.") from None


def _loads(text: str, where: str, last: bool, line: bool = True) -> Any:
    """json.loads with every failure as a DataError at `where`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # Error at the very end, or a string running to the end: a truncated write.
        cut = last and (exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"))
        why = "; the file is cut off (written partially?)" if cut else ""
        at = f"{where}:{exc.lineno}:{exc.colno}" if line else f"{where}"
        msg = exc.msg if line else f"{exc.msg.removesuffix(' at')} at column {exc.colno}"
        raise DataError(f"{at}: invalid JSON ({msg}){why}. {_REGEN_HINT}") from None
    except RecursionError:
        raise DataError(f"{where}: invalid JSON (nested too deeply to read). Hint: flatten the data.") from None
    except ValueError as exc:  # e.g. an integer longer than Python's 4300-digit conversion limit
        raise DataError(f"{where}: invalid JSON ({exc}). {_REGEN_HINT}") from None


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a missing, corrupt, truncated or empty file raises DataError naming it."""
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty or cut off (written partially?). {_REGEN_HINT}")
    return _loads(text, str(path), last=True)


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL file of objects; errors name the file and line."""
    path = Path(path)
    lines = read_text(path).split("\n")  # not splitlines(): U+2028 etc. are legal inside JSON strings
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = _loads(line, f"{path}:{n}", last=n == len(lines), line=False)
        if not isinstance(row, dict):
            raise DataError(f"{path}:{n}: each line must be a JSON object, got {type(row).__name__}. "
                            'Hint: one {"key": value, ...} object per line.')
        rows.append(row)
    return rows


def read_records(path: str | Path) -> list[dict]:
    """Rows from a .json file holding a list of objects, or from a .jsonl file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl(path)
    if suffix != ".json":
        raise DataError(f"{path}: unknown file type {suffix or '(no suffix)'!r}. "
                        "Hint: use .json (a list of objects) or .jsonl (one object per line).")
    data = read_json(path)
    bad = next((i for i, row in enumerate(data) if not isinstance(row, dict)), None) if isinstance(data, list) else -1
    if bad is not None:
        got = type(data).__name__ if bad < 0 else f"item {bad} is {type(data[bad]).__name__}"
        raise DataError(f"{path}: expected a JSON list of objects, got {got}. "
                        "Hint: write [{...}, {...}], or use .jsonl with one object per line.")
    return data
