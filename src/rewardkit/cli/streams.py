"""Output streams a command cannot fail on: a stdout closed at start and text the terminal cannot encode.

- `rewardkit list >&-` starts Python without fd 1 (sys.stdout is None): a stand-in raises BrokenPipeError on the
  first write, so the command ends as a closed pipe does (exit 141, quiet; rewardkit.cli.console).
- stdout carries the command's own output only: text written by any other code while a command runs (a reward's
  or a plugin's `print()`, a library) goes to stderr, so `score --json` and every `--json` stays parseable.
- An ASCII or C-locale terminal (PYTHONIOENCODING=ascii, LC_ALL=C): characters it cannot encode are written as
  \\u escapes instead of a UnicodeEncodeError traceback; surrogate-escaped bytes (a C locale's undecodable file
  names) go out as the bytes they were.
"""

from __future__ import annotations

import codecs
import errno
import io
import logging
import sys
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


def robust_streams() -> dict:
    """Make stdout/stderr unable to fail on an encoding and give a closed stdout a stand-in; returns what
    restore_streams puts back."""
    try:
        codecs.lookup_error(ESCAPE_ERRORS)
    except LookupError:
        codecs.register_error(ESCAPE_ERRORS, _escape)
    saved: dict = {"stdout": sys.stdout, "errors": {}}
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
