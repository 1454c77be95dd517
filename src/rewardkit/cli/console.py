"""Process plumbing of the `rewardkit` command: exit codes, signals, broken pipes, warnings, output width.

Exit codes (POSIX practice):
    0    success
    1    failure: a bug (shown with a traceback) or a failed run
    2    usage or input error: one "Error: ..." line on stderr, "Hint: ..." included where useful
    130  Ctrl-C (SIGINT): one line "Interrupted."
    141  stdout closed early (`rewardkit list | head -1`) or at start (`rewardkit list >&-`): quiet
    143  SIGTERM: one line "Terminated." (the library's cleanup, e.g. removing temp files, has run)

SIGTERM is turned into the same unwinding as Ctrl-C so `finally` blocks run. Under a distributed launcher
(WORLD_SIZE > 1) the default action is kept: torchrun/accelerate own the ranks' lifetime, and a rank blocked in
a collective could not unwind anyway.

Output streams (rewardkit.cli.streams, set up for each run): fd 1 is stderr while the command runs (its own output
keeps the original stdout), so C-level writes cannot break `--json`; text a terminal's encoding cannot hold (ASCII, a C locale)
is escaped, never an error; a stdout closed at start is a closed pipe. A terminal reporting a width under MIN_WIDTH
columns (`COLUMNS=0`) is printed at DEFAULT_WIDTH, so errors still show.

Nothing here imports torch, transformers or other heavy modules (`rewardkit list` must stay light).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import warnings
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn, TextIO

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from rewardkit.cli import quiet
from rewardkit.cli.streams import restore_streams, robust_streams
from rewardkit.core.errors import RewardkitError

EXIT_USAGE = 2
EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGPIPE = 128 + signal.SIGPIPE  # 141
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143

# Third-party loggers silenced (to ERROR) unless --verbose. The libraries in ENV_LEVELS reset their logger's
# level when imported, so they are told through their own environment variable (a value the user set wins).
QUIET_LOGGERS = ("bitsandbytes", "transformers", "accelerate", "datasets", "peft", "trl", "torch", "huggingface_hub")
ENV_LEVELS = {
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
    "HF_HUB_VERBOSITY": "error",
    "TORCH_LOGS": "-all",
}
# Modules whose warnings always reach the user: rewardkit and its plugins (rewardkit_*).
OWN_MODULES = ("rewardkit",)

# Below this many columns rich prints nothing useful (0 columns: nothing at all, not even an error line).
MIN_WIDTH = 20
DEFAULT_WIDTH = 80


@dataclass
class _SignalState:
    """What the SIGTERM handler and the exit path share: signal handlers are per process, and so is this."""

    main_pid: int | None = None
    terminated: bool = False


_SIGNALS = _SignalState()


class _PipeClosed(Exception):
    """stdout was closed by the reader; raised instead of BrokenPipeError so typer does not turn it into exit 1."""


# ctx: Any below: typer 0.29 types it with its private vendored click (typer._click), earlier typers with click's.
class Command(TyperCommand):
    """Usage line shows a required argument as `SPEC`, not typer's `{SPEC}`."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


class Group(TyperGroup):
    """The app's group: every command gets `Command`'s usage line; a closed stdout is reported as _PipeClosed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            if type(command) is TyperCommand:  # commands added with a plain @app.command() included
                command.__class__ = Command

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:  # `rewardkit --help | head -1` writes while parsing
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            raise _PipeClosed() from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _PipeClosed() from None


# --- output ------------------------------------------------------------------------------------------------


class OutputConsole(Console):
    """rich Console whose closed-pipe handling ends in exit 141 (rich's own exits 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise _PipeClosed()


OUT = OutputConsole()  # the command's stdout and stderr consoles (run() widens them), for every command module
ERR = OutputConsole(stderr=True)


def widen(console: Console) -> Console:
    """Never wrap when the output is not a terminal: paths and titles stay on one line for grep and logs.
    A terminal narrower than MIN_WIDTH (`COLUMNS=0`) gets DEFAULT_WIDTH."""
    if not console.is_terminal:
        console.width = 100_000
        console.soft_wrap = True
    elif console.width < MIN_WIDTH:
        console.width = DEFAULT_WIDTH
    return console


def print_table(console: Console, table: Table) -> None:
    """Print a table; off a terminal its title goes on a line of its own (a title wraps at the table's width)."""
    if table.title and not console.is_terminal:
        title = table.title
        table.title = None
        console.print(title if isinstance(title, Text) else Text(str(title)), soft_wrap=True)
    console.print(table)


def error_line(err: Console, message: str) -> None:
    """One red "Error: ..." line; the message is plain text (a regex like "[0-9]" is not rich markup)."""
    err.print(Text.assemble(("Error: ", "red"), message), highlight=False, soft_wrap=True)


# --- warnings and logs -------------------------------------------------------------------------------------


def _emitting_module() -> str:
    """Name of the module whose code called warnings.warn (not the one `stacklevel` blames)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in (__name__, "warnings", "_py_warnings"):
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


def _is_own(module: str) -> bool:
    return any(module == m or module.startswith((f"{m}.", f"{m}_")) for m in OWN_MODULES)


def quiet_third_party() -> None:
    """Hide third-party warnings and log chatter; rewardkit's own warnings stay visible.

    A warnings filter by module would not do: rewardkit warns with `stacklevel=2/3`, so its warnings are
    attributed to the caller (often TRL). The hook asks which code called `warnings.warn` instead.
    Python's -W / PYTHONWARNINGS, when given, are left alone.
    """
    for name, value in ENV_LEVELS.items():
        os.environ.setdefault(name, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    # transformers turns the training progress bar off when its logger is above WARNING (TrainingArguments
    # .disable_tqdm default): keep that one logger at WARNING so the progress bar stays.
    logging.getLogger("transformers.training_args").setLevel(logging.WARNING)
    quiet.filter_stderr()  # whatever package the rest comes from (rewardkit.cli.quiet)
    if sys.warnoptions:
        return
    show = warnings.showwarning
    if getattr(show, "_rewardkit_filter", False):
        return

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if _is_own(_emitting_module()):
            show(message, category, filename, lineno, file, line)

    showwarning._rewardkit_filter = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


# --- signals and the entry point -----------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: Any) -> None:
    if os.getpid() != _SIGNALS.main_pid:  # a forked child inherited the handler: die as the default action would
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _SIGNALS.terminated = True
    signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM kills at once
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """SIGTERM unwinds like Ctrl-C (then exit 143), except under a distributed launcher or if it is ignored."""
    _SIGNALS.main_pid = os.getpid()
    if threading.current_thread() is not threading.main_thread():
        return
    distributed = os.environ.get("WORLD_SIZE", "1").strip() not in ("", "1")
    if not distributed and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _interrupted(err: Console) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the exit
    code, word = (EXIT_SIGTERM, "Terminated.") if _SIGNALS.terminated else (EXIT_SIGINT, "Interrupted.")
    try:
        err.print(Text(word, style="yellow"), highlight=False)
    except OSError:
        pass
    return code


def _pipe_closed() -> int:
    # Python docs (signal, "Note on SIGPIPE"): point stdout at devnull so the flush at exit does not fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_SIGPIPE


def _usage_error(exc: Exception, err: Console) -> int:
    """typer/click UsageError, BadParameter, NoSuchOption...: one line, with a pointer to --help."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare `rewardkit`: the help text itself, on stderr
        exc.show()  # type: ignore[attr-defined]
        return EXIT_USAGE
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    if message and message[-1] not in ".?!":
        message += "."
    hint = ""
    if ctx is not None and "--help" in ctx.help_option_names and "Hint:" not in message:
        hint = f" Hint: see '{ctx.command_path} --help'."
    error_line(err, message + hint)
    return getattr(exc, "exit_code", EXIT_USAGE)


def _os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.filename is not None and exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {reason}."
    if exc.filename is not None:
        return f"{exc.filename}: {reason}."
    return f"{reason}."


def _save_state() -> tuple:
    """What a run changes in the process: restored afterwards, for callers of main() in-process (tests)."""
    env = {name: os.environ.get(name) for name in ENV_LEVELS}
    levels = {name: logging.getLogger(name).level for name in (*QUIET_LOGGERS, "transformers.training_args")}
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    return env, levels, warnings.showwarning, handlers, quiet.save()


def _restore_state(state: tuple) -> None:
    env, levels, showwarning, handlers, saved_stderr = state
    quiet.restore(saved_stderr)
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    warnings.showwarning = showwarning
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)


def run(app: typer.Typer, out: Console, err: Console) -> NoReturn:
    """Run the typer app and exit with the codes in this module's docstring."""
    _SIGNALS.terminated = False
    state = _save_state()
    streams = robust_streams()  # a closed stdout, an ASCII terminal: never a traceback (rewardkit.cli.streams)
    try:
        code = _run(app, out, err)
    finally:
        restore_streams(streams)
        _restore_state(state)
    sys.exit(code)


def _run(app: typer.Typer, out: Console, err: Console) -> int:
    install_signal_handlers()
    widen(out)
    widen(err)
    try:
        try:
            result = app(standalone_mode=False)
            sys.stdout.flush()  # a closed pipe shows here rather than in the interpreter's exit flush
        except BrokenPipeError:
            raise _PipeClosed() from None
        # standalone_mode=False: typer returns the code of a typer.Exit; Ctrl-C arrives as Exit(130).
        code = result if isinstance(result, int) else 0
        if code == EXIT_SIGINT:
            code = _interrupted(err)
    except (KeyboardInterrupt, typer.Abort):
        code = _interrupted(err)
    except _PipeClosed:
        code = _pipe_closed()
    except RewardkitError as exc:
        error_line(err, str(exc))
        code = EXIT_USAGE
    except typer.TyperException as exc:  # click's UsageError family (typer vendors click as typer._click)
        code = _usage_error(exc, err)
    except OSError as exc:  # safety net: the library turns the OSErrors a user can cause into DataError
        error_line(err, _os_error(exc))
        code = EXIT_USAGE
    except UnicodeDecodeError as exc:
        error_line(
            err, f"the input is not UTF-8 text ({exc.reason} at byte {exc.start}). Hint: convert the file to UTF-8."
        )
        code = EXIT_USAGE
    except json.JSONDecodeError as exc:
        error_line(err, f"invalid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}).")
        code = EXIT_USAGE
    except RecursionError:
        error_line(err, "the input is nested too deeply to read (maximum recursion depth exceeded).")
        code = EXIT_USAGE
    return code
