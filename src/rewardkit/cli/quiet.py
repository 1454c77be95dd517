"""Hiding third-party output by stream: stderr keeps rewardkit's own lines, whatever package writes the rest.

A list of noisy loggers is never complete (transformers 5.25 brought `kernels`, which logs on import of
bitsandbytes' 4-bit path): the stderr filter asks which code wrote each piece of text instead. Text written
through logging, warnings, rich, click/typer or tqdm is attributed to the code that called them; it passes when
that code is rewardkit's (or a rewardkit_* plugin's; a log record by its logger's name, errors always), when no Python code wrote it (the interpreter's own
traceback of a crash), or, for progress bars, when stderr is a terminal. Everything else is dropped.

`--verbose` installs none of this. Nothing here imports anything heavy.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from types import FrameType
from typing import Any

OWN_MODULES = ("rewardkit",)
# Modules that carry text for someone else: the writer is the first frame outside them.
TRANSPORT = frozenset(
    {
        "logging",
        "warnings",
        "rich",
        "click",
        "typer",
        "io",
        "codecs",
        "contextlib",
        "functools",
        "threading",
        "_py_warnings",
        "encodings",
        "colorama",
    }
)
PROGRESS = frozenset({"tqdm"})


def is_own(module: str) -> bool:
    """Whether a module name is rewardkit's or a plugin's (rewardkit_*)."""
    return any(module == m or module.startswith((f"{m}.", f"{m}_")) for m in OWN_MODULES)


def writer_allowed(frame: FrameType | None, terminal: bool) -> bool:
    """Whether the text written from `frame` (the caller of write) may reach stderr."""
    progress = False
    while frame is not None:
        name = frame.f_globals.get("__name__", "") or ""
        top = name.split(".", 1)[0]
        record = frame.f_locals.get("record") if top == "logging" else None
        if isinstance(record, logging.LogRecord):  # a log line belongs to its logger, not to the caller
            return is_own(record.name) or record.levelno >= logging.ERROR
        if top in PROGRESS:
            progress = True
        elif top not in TRANSPORT:
            return is_own(name) or (progress and terminal)
        frame = frame.f_back
    # No Python writer: the interpreter itself (an uncaught exception's traceback); a bar's own thread: as bars.
    return terminal or not progress


class FilteredStream:
    """A text stream that forwards only the writes `writer_allowed` accepts; everything else is delegated."""

    _rewardkit_filter = True

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        try:
            self.terminal = bool(stream.isatty())
        except (AttributeError, ValueError, OSError):
            self.terminal = False

    def write(self, text: str) -> int:
        if writer_allowed(sys._getframe(1), self.terminal):
            return self.stream.write(text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        if writer_allowed(sys._getframe(1), self.terminal):
            self.stream.writelines(lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def filter_stderr() -> None:
    """Replace sys.stderr with a FilteredStream (once) and quiet every logger that is not rewardkit's.

    Loggers: the root goes to ERROR, so a package's logger without a level of its own (kernels, bitsandbytes'
    submodules) is quiet too, even where its handler holds the original stderr; rewardkit's keeps WARNING.
    """
    if sys.stderr is not None and not getattr(sys.stderr, "_rewardkit_filter", False):
        sys.stderr = FilteredStream(sys.stderr)
    logging.getLogger().setLevel(logging.ERROR)
    for name in OWN_MODULES:
        own = logging.getLogger(name)
        if own.level == logging.NOTSET:
            own.setLevel(logging.WARNING)


def save() -> tuple:
    """What filter_stderr changes, for restore()."""
    return sys.stderr, logging.getLogger().level, {m: logging.getLogger(m).level for m in OWN_MODULES}


def restore(saved: tuple) -> None:
    """Undo filter_stderr (callers of the CLI in-process, e.g. tests)."""
    stream, root, own = saved
    sys.stderr = stream
    logging.getLogger().setLevel(root)
    for name, level in own.items():
        logging.getLogger(name).setLevel(level)
