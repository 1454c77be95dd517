"""Output streams a command cannot fail on: a stdout closed at start and text the terminal cannot encode.

- `rewardkit list >&-` starts Python without fd 1 (sys.stdout is None): a stand-in raises BrokenPipeError on the
  first write, so the command ends as a closed pipe does (exit 141, quiet; rewardkit.cli.console).
- stdout carries the command's own output only: text written by any other code while a command runs (a reward's
  or a plugin's `print()`, a library) goes to stderr, so `score --json` and every `--json` stays parseable.
  Below Python too: while a command runs, file descriptor 1 is a copy of stderr (a C library's printf,
  `os.write(1, ...)`, a child process a reward starts) and the command's own output goes to a duplicate of the
  original fd 1; the original is put back when the command ends, however it ends.
- An ASCII or C-locale terminal (PYTHONIOENCODING=ascii, LC_ALL=C): characters it cannot encode are written as
  \\u escapes instead of a UnicodeEncodeError traceback; surrogate-escaped bytes (a C locale's undecodable file
  names) go out as the bytes they were.
"""

from __future__ import annotations

import codecs
import errno
import io
import logging
import os
import sys
import threading
from types import FrameType
from typing import Any

from rewardkit.cli.quiet import TRANSPORT

ESCAPE_ERRORS = "rewardkit.escape"  # codec error handler of stdout/stderr while a command runs


class _ClosedStdout(io.TextIOBase):
    """Stands in for the stdout a process started without (`rewardkit list >&-`, sys.stdout is None): writing
    to it is a closed pipe, so the command ends like `rewardkit list | head -0` (exit 141, quiet)."""

    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            raise BrokenPipeError(errno.EPIPE, "stdout is closed")
        return 0


def _command_wrote(frame: FrameType | None) -> bool:
    """Whether the text written from `frame` is the command's own output (rewardkit's code, through print,
    typer, rich or logging), not a reward's, a plugin's (rewardkit_*) or a library's."""
    while frame is not None:
        name = frame.f_globals.get("__name__", "") or ""
        top = name.split(".", 1)[0]
        record = frame.f_locals.get("record") if top == "logging" else None
        if isinstance(record, logging.LogRecord):  # a log line belongs to its logger, not to the caller
            return record.name == "rewardkit" or record.name.startswith("rewardkit.")
        if top not in TRANSPORT:
            return top == "rewardkit"
        frame = frame.f_back
    return False


class CommandStdout:
    """sys.stdout while a command runs: the command's own writes go to stdout, every other write to stderr."""

    def __init__(self, stdout: Any, stderr: Any) -> None:
        self.stdout = stdout
        self.stderr = stderr

    def _target(self, frame: FrameType | None) -> Any:
        return self.stdout if self.stderr is None or _command_wrote(frame) else self.stderr

    def write(self, text: str) -> int:
        return self._target(sys._getframe(1)).write(text)

    def writelines(self, lines: Any) -> None:
        self._target(sys._getframe(1)).writelines(lines)

    def flush(self) -> None:
        for stream in (self.stderr, self.stdout):  # stdout last: a closed pipe raises from here
            if stream is not None:
                stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stdout, name)


def _escape(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Codec error handler: surrogate-escaped bytes (a C locale's file names) go out as the bytes they were;
    any other character the stream's encoding lacks is written as a \\x, \\u escape."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    chars = exc.object[exc.start : exc.end]
    if all(0xDC80 <= ord(c) <= 0xDCFF for c in chars):
        return bytes(ord(c) - 0xDC00 for c in chars), exc.end
    return codecs.backslashreplace_errors(exc)


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _stdout_fd() -> int | None:
    """The file descriptor sys.stdout writes to; None for a stream without one (pytest's capsys, a closed stdout)."""
    try:
        return sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _fd1_to_stderr(saved: dict) -> None:
    """Point fd 1 at stderr for the command; the command's own output (sys.stdout on fd 1) moves to a duplicate.

    Left alone off the main thread (fds belong to the process: an in-process caller on a thread must not move
    them under the others), without an open stderr, and for a stdout on fd 1 that is not a plain text file."""
    if threading.current_thread() is not threading.main_thread() or not _fd_open(2):
        return
    on_fd1 = _stdout_fd() == 1
    if on_fd1 and not isinstance(sys.stdout, io.TextIOWrapper):
        return
    if not _fd_open(1):  # started without fd 1: a file opened now would get fd 1, and a C write would land in it
        os.dup2(2, 1)
        saved["fd1"] = None
        return
    if on_fd1:
        sys.stdout.flush()
    kept = os.dup(1)
    if on_fd1:
        saved["own"] = sys.stdout = open(  # noqa: SIM115 (closed by _fd1_back)
            kept,
            "w",
            buffering=1 if sys.stdout.line_buffering else -1,  # 1: line buffered, as a terminal's stdout is
            encoding=sys.stdout.encoding,
            errors=ESCAPE_ERRORS,
            newline="\n",
            closefd=False,
        )
    os.dup2(2, 1)
    saved["fd1"] = kept


def _fd1_back(saved: dict) -> None:
    """Put fd 1 back as _fd1_to_stderr found it, the command's last output written first."""
    if "fd1" not in saved:
        return
    kept = saved.pop("fd1")
    own = saved.pop("own", None)
    if own is not None:
        try:
            own.close()  # flushes; a closed pipe here was already met by the command (exit 141)
        except (OSError, ValueError):
            pass
    if kept is None:
        os.close(1)
        return
    os.dup2(kept, 1)
    os.close(kept)


def robust_streams() -> dict:
    """Make stdout/stderr unable to fail on an encoding, give a closed stdout a stand-in and keep fd 1 for the
    command's own output; returns what restore_streams puts back."""
    try:
        codecs.lookup_error(ESCAPE_ERRORS)
    except LookupError:
        codecs.register_error(ESCAPE_ERRORS, _escape)
    saved: dict = {"stdout": sys.stdout, "errors": {}}
    _fd1_to_stderr(saved)
    if sys.stdout is None:
        sys.stdout = _ClosedStdout()
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors != ESCAPE_ERRORS:
            old = stream.errors
            try:
                stream.reconfigure(errors=ESCAPE_ERRORS)
            except (OSError, ValueError):  # a closed or detached stream: left as it is
                continue
            saved["errors"][stream] = old
    sys.stdout = CommandStdout(sys.stdout, sys.stderr)
    return saved


def restore_streams(saved: dict) -> None:
    """Put back what robust_streams changed."""
    for stream, errors in saved["errors"].items():
        try:
            stream.reconfigure(errors=errors)
        except (OSError, ValueError):
            pass
    sys.stdout = saved["stdout"]
    _fd1_back(saved)
