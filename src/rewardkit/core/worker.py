"""A worker process that scores with a time budget: on expiry it is killed, never left burning a core.

Threads cannot be stopped and `signal.alarm` only works in the main thread (TRL may call rewards from
other threads), so a reward with `timeout=` scores in a spawned process that is restarted after a timeout.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
from typing import Any

from rewardkit.core.errors import RewardError

_SENDABLE = ("prompts", "completion_ids")


class WorkerDied(RewardError):
    """The worker process ended while scoring (os._exit, a crash, the OOM killer): no row has a score."""


def _exit_text(code: int | None) -> str:
    if code is None:
        return "exit code unknown"
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _serve(conn: Any, reward: Any) -> None:
    # Ctrl-C reaches the whole process group: the parent turns it into one line and exit 130, and its
    # cleanup stops this worker; a traceback from here would only add noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout = sys.stderr  # a reward's print() must not reach the parent's stdout (`score --json` parses it)
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        texts, refs, context = job
        try:
            result = (
                "ok",
                reward._rows_one_by_one(texts, refs, list(range(len(texts))), context, None)
                if reward.params.on_error != "raise"
                else reward.score_batch(texts, refs, **context),
            )
        except (Exception, SystemExit) as exc:  # a reward calling sys.exit() fails like one that raises
            result = ("error", f"{type(exc).__name__}: {exc}")
        conn.send(result)


class Worker:
    """One spawned process holding a copy of the reward."""

    def __init__(self, reward: Any) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, reward), daemon=True)
        try:
            self.proc.start()  # pickles the reward
        except Exception as exc:
            child.close()
            self.conn.close()
            raise RewardError(
                f"Reward {reward.__name__!r} cannot be sent to its worker process (timeout: runs it in "
                f"one): {type(exc).__name__}: {exc}.",
                hint="define the reward function at module level (no lambda or closure), or remove timeout:.",
            ) from None
        child.close()
        # Wait for start-up (imports, unpickling) here so the time budget covers scoring only.
        try:
            ready = self.conn.poll(120) and self.conn.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.stop(grace=2.0)
            raise RewardError(
                f"The worker process for reward {reward.__name__!r} did not start ({_exit_text(self.proc.exitcode)}).",
                hint="the reward must be importable in a fresh "
                "process (module-level function or class); its error was printed above.",
            )

    def stop(self, grace: float = 0.0) -> None:
        """Kill the process (after `grace` seconds to finish exiting on its own, so its exit code is kept)."""
        if grace and self.proc.is_alive():
            self.proc.join(timeout=grace)
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


def run_with_timeout(
    reward: Any, texts: list[str], refs: list | None, context: dict, timeout: float
) -> tuple[list, bool]:
    """Score in the reward's worker; returns (scores, timed_out)."""
    if reward._worker is None or not reward._worker.proc.is_alive():
        reward._worker = Worker(reward)
    worker = reward._worker
    # Columns are plain data; trainer objects (state, environments) stay in this process.
    payload = {k: v for k, v in context.items() if k in _SENDABLE or isinstance(v, list)}
    try:
        worker.conn.send((texts, refs, payload))
        ready = worker.conn.poll(timeout)
        received: tuple[Any, Any] = worker.conn.recv() if ready else (None, None)
        status, value = received
    except (EOFError, OSError):  # the process is gone (os._exit, a segfault, killed): never a bare EOFError
        worker.stop(grace=2.0)
        reward._worker = None
        raise WorkerDied(
            f"Reward {reward.__name__!r}: the worker process died ({_exit_text(worker.proc.exitcode)}) "
            f"while scoring {len(texts)} completions.",
            hint="something in the reward ended its process "
            "(os._exit, a crash, out of memory); run it without timeout: to see where.",
        ) from None
    if ready:
        if status == "error":
            raise RewardError(f"Reward {reward.__name__!r} failed in its worker process: {value}")
        return value, False
    worker.stop()
    reward._worker = None
    return [None] * len(texts), True
