"""Strict, bounded reading of the files users hand rewardkit: text, JSON, JSONL and records (regular files and
pipes, never devices; at most REWARDKIT_MAX_INPUT_BYTES). Writing lives in `fileio`."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from rewardkit.core.errors import DataError, RewardkitError

_REGEN_HINT = "regenerate it or delete it."
# Input files are read whole: a limit stops a runaway read (a huge or endless file) with a clear error.
MAX_INPUT_ENV = "REWARDKIT_MAX_INPUT_BYTES"
DEFAULT_MAX_INPUT_BYTES = 2 * 1024**3
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symlink loop"),
    (stat.S_ISREG, "a file"),
)


def file_kind(mode: int) -> str:
    """Human name of a file type."""
    return next((name for test, name in _KINDS if test(mode)), "an unknown kind of file")


def max_input_bytes() -> int:
    """The largest input file read (MAX_INPUT_ENV, default DEFAULT_MAX_INPUT_BYTES): a runaway read must stop."""
    raw = os.environ.get(MAX_INPUT_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_INPUT_BYTES
    if not raw.isascii() or not raw.isdigit() or int(raw) <= 0:
        raise DataError(
            f"{MAX_INPUT_ENV}={raw!r}: expected a positive number of bytes.",
            hint=f"e.g. {MAX_INPUT_ENV}={4 * 1024**3} for 4 GiB, or unset it for the default.",
        )
    return int(raw)


_READ_HINT = "pass a readable JSON/JSONL file (check the path)."


def _too_large(path: Path, size: str, limit: int, error: type[RewardkitError]) -> RewardkitError:
    return error(
        f"{path}: {size} bytes, over the input limit of {limit} bytes.",
        hint="split the file, "
        f"or raise the limit with {MAX_INPUT_ENV}=<bytes> where the memory allows (JSON takes "
        "several times its file size in memory).",
    )


def _input_error(path: Path, exc: OSError, error: type[RewardkitError], hint: str) -> RewardkitError:
    why = {
        errno.ENOENT: "the file does not exist",
        errno.EISDIR: "is a directory, not a file",
        errno.EACCES: "permission denied when reading",
    }.get(exc.errno or -1, f"cannot read ({exc.strerror or exc})")
    return error(f"{path}: {why}.", hint=hint)


def _check_readable_kind(path: Path, mode: int, error: type[RewardkitError], hint: str, pipes: bool) -> None:
    """Regular files and pipes (`--input <(zcat rows.jsonl.gz)`) are read; a device or socket is refused:
    reading /dev/zero or /dev/urandom never ends. `pipes=False` refuses pipes too (a spec is a file: opening a
    FIFO nobody writes to would block)."""
    if stat.S_ISDIR(mode):
        raise error(f"{path}: is a directory, not a file.", hint=hint)
    if not (stat.S_ISREG(mode) or (pipes and stat.S_ISFIFO(mode))):
        what = (
            f"is {file_kind(mode)}, not a regular file or pipe"
            if pipes
            else f"is not a regular file ({file_kind(mode)})"
        )
        raise error(
            f"{path}: {what}, so it is not read (it may never end).",
            hint="save the data to a file first and pass that file.",
        )


def read_input_bytes(
    path: str | Path,
    *,
    error: type[RewardkitError] = DataError,
    max_bytes: int | None = None,
    hint: str = _READ_HINT,
    pipes: bool = True,
) -> bytes:
    """The bytes of a regular file or pipe, at most `max_bytes` (default max_input_bytes()) of them; a device or
    socket is refused and a missing or unreadable file is one `error` naming it."""
    path = Path(path)
    limit = max_input_bytes() if max_bytes is None else max_bytes
    try:
        _check_readable_kind(
            path, os.stat(path).st_mode, error, hint, pipes
        )  # before opening: opening a device can act
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _input_error(path, exc, error, hint) from None
    try:
        st = os.fstat(fd)
        _check_readable_kind(path, st.st_mode, error, hint, pipes)  # swapped between the stat and the open
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


def read_text(
    path: Path,
    *,
    error: type[RewardkitError] = DataError,
    max_bytes: int | None = None,
    hint: str = _READ_HINT,
    pipes: bool = True,
) -> str:
    """File contents as UTF-8 text (a leading BOM dropped), read bounded by read_input_bytes; every user-caused
    failure is one `error` naming the file: missing, a directory or device, unreadable, too large, or not UTF-8
    (with the line)."""
    data = read_input_bytes(path, error=error, max_bytes=max_bytes, hint=hint, pipes=pipes)
    try:
        return data.decode("utf-8-sig")  # -sig: files saved by Windows editors start with a BOM
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}).",
            hint="save the file as UTF-8.",
        ) from None


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
        raise DataError(f"{at}: invalid JSON ({msg}){why}.", hint=_REGEN_HINT) from None
    except RecursionError:
        raise DataError(f"{where}: invalid JSON (nested too deeply to read).", hint="flatten the data.") from None
    except ValueError as exc:  # e.g. an integer longer than Python's 4300-digit conversion limit
        raise DataError(f"{where}: invalid JSON ({exc}).", hint=_REGEN_HINT) from None


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a missing, corrupt, truncated or empty file raises DataError naming it."""
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty or cut off (written partially?).", hint=_REGEN_HINT)
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
            raise DataError(
                f"{path}:{n}: each line must be a JSON object, got {type(row).__name__}.",
                hint='one {"key": value, ...} object per line.',
            )
        rows.append(row)
    return rows


def read_records(path: str | Path) -> list[dict]:
    """Rows from a .json file holding a list of objects, or from a .jsonl file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl(path)
    if suffix != ".json":
        raise DataError(
            f"{path}: unknown file type {suffix or '(no suffix)'!r}.",
            hint="use .json (a list of objects) or .jsonl (one object per line).",
        )
    data = read_json(path)
    bad = next((i for i, row in enumerate(data) if not isinstance(row, dict)), None) if isinstance(data, list) else -1
    if bad is not None:
        got = type(data).__name__ if bad < 0 else f"item {bad} is {type(data[bad]).__name__}"
        raise DataError(
            f"{path}: expected a JSON list of objects, got {got}.",
            hint="write [{...}, {...}], or use .jsonl with one object per line.",
        )
    return data


def read_run_bytes(path: str | Path) -> bytes | None:
    """The bytes of a file a run wrote in its folder (a marker, record, log), or None when it is missing or cannot
    be read. Anything but a regular file there is a DataError naming it: a run writes none, and opening a FIFO (a
    received run archive may carry one) blocked `--resume` forever. Bounded like every input."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if not stat.S_ISREG(mode):
        raise DataError(
            f"{path}: is {file_kind(mode)}, not a regular file, so it is not read (a run writes only regular files "
            "there; opening a FIFO would block).",
            hint="remove it (a received run archive may carry one), then run again.",
        )
    try:
        return read_input_bytes(path, pipes=False)
    except DataError:
        if os.path.isfile(path) and os.path.getsize(path) > max_input_bytes():
            raise
        return None  # unreadable, or swapped since the stat: as good as missing


def read_run_json(path: str | Path) -> Any:
    """The JSON of a file a run wrote (read_run_bytes), or None when it is missing, cut short or not JSON."""
    data = read_run_bytes(path)
    try:
        return None if data is None else json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
