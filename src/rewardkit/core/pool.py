"""A pool of spawned worker processes with a deadline per task: a task past it is killed, never left burning.

Threads cannot be stopped and `signal.alarm` works only in the main thread (TRL may call rewards from other
threads), so work that must be bounded in time, or spread over cores, runs here:

    pool = ProcessPool(workers=4, name="math")
    outcomes = pool.map(verify_one, [(gold, answer), ...], timeout=5.0)
    [o.value if o.ok else None for o in outcomes]

- `fn` is a picklable module-level function; `map` applies it to each item in a worker process and returns one
  `Outcome` per item, in order: `ok` (`.value`), `timeout`, or `error` (`.error` is `"Type: message"`;
  `WorkerDied: ...` when the process ended, e.g. `os._exit` or a crash, or could not start). Nothing raises for a
  single item.
- Items run in parallel over the workers; an item's deadline starts when a worker has taken it (process start-up,
  importing `fn`'s module and unpickling the item are excluded: each has its own generous limit, START_TIMEOUT).
  `map` returns as soon as every item is done or past its deadline. A worker past its deadline is killed; the
  next task that needs it starts a fresh one (workers start lazily).
- Thread-safe: several threads may call `map` on one pool at once; each gets its own results (a worker serves
  one task at a time, and each reply comes back on the pipe of the worker the task was sent to).
- A pool is never pickled: objects holding one drop it in `__getstate__` (pickling raises TypeError).
- `shared_pool(key, workers)` returns one pool per `(key, workers)` for the whole process, so reward instances and
  threads reuse processes; every pool is closed at interpreter exit.
- Workers ignore Ctrl-C (the parent turns it into one line and exit 130, and stops the workers that were running
  its tasks); they exit on their own when the parent's pipe closes or the parent process is gone. They are not
  daemonic, so a pool works inside another pool's worker too.
"""

from __future__ import annotations

import atexit
import math
import multiprocessing as mp
import multiprocessing.util
import os
import signal
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Literal, cast

START_TIMEOUT = 120.0  # seconds a fresh worker may take to import and report ready
_IDLE_POLL = 0.02  # seconds between looks for a free worker while all are busy with other callers' tasks


@dataclass(frozen=True)
class Outcome:
    """What one item gave: `status` ok (`value`), timeout, or error (`error` = "Type: message")."""

    status: Literal["ok", "timeout", "error"]
    value: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        """Whether the item finished and returned `value`."""
        return self.status == "ok"

    @property
    def died(self) -> bool:
        """Whether the worker process ended (or never started) while holding this item."""
        return self.error.startswith("WorkerDied:")


def exit_text(code: int | None) -> str:
    """A process exit code in words."""
    if code is None:
        return "exit code unknown"
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _watch_parent(parent: int) -> None:
    # A worker stuck in a task does not read its pipe, so it would not notice a SIGKILLed parent: check here.
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _serve(conn: Connection, parent: int) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it; a traceback from here would only add noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout = sys.stderr  # a task's print() must not reach the parent's stdout (`score --json` parses it)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    conn.send(("ready", None))
    while True:
        try:
            fn, item = conn.recv()  # unpickling imports fn's module and builds the item: not part of the deadline
            conn.send(("started", None))
        except (EOFError, OSError):
            return
        except Exception as exc:  # the task does not unpickle here (a module missing in a fresh process)
            conn.send(("started", None))
            conn.send(("error", f"{type(exc).__name__}: the task cannot be received by a worker: {exc}"))
            continue
        try:
            reply: tuple[str, Any] = ("ok", fn(item))
        except (Exception, SystemExit) as exc:  # a task calling sys.exit() fails like one that raises
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return
        except Exception as exc:  # the value does not pickle
            conn.send(("error", f"{type(exc).__name__}: the result cannot be sent back: {exc}"))


class _Worker:
    """One spawned process and the parent's end of its pipe."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, os.getpid()), daemon=False, name="rewardkit-pool")
        try:
            self.proc.start()
        except AssertionError as exc:  # multiprocessing refuses children in a daemonic process
            child.close()
            self.conn.close()
            raise RuntimeError(
                f"A process pool cannot start workers here: {exc} (this process is a daemonic worker, e.g. of a "
                "DataLoader or another library's pool); run without timeout:/workers: there."
            ) from None
        child.close()
        self.ready = False

    def stop(self, grace: float = 0.0) -> None:
        """Kill the process (after `grace` seconds to exit on its own, so its exit code is kept)."""
        if grace and self.proc.is_alive():
            self.proc.join(timeout=grace)
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


@dataclass
class _Task:
    index: int
    item: Any
    worker: _Worker
    deadline: float
    limit: float  # seconds it may run once sent
    sent: bool = False


class ProcessPool:
    """`workers` spawned processes running `fn(item)` tasks with a deadline each (see the module docstring)."""

    def __init__(self, workers: int, name: str = "rewardkit") -> None:
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"ProcessPool {name!r}: workers must be an integer >= 1, got {workers!r}.")
        self.workers = workers
        self.name = name
        self._lock = threading.Condition()
        self._idle: list[_Worker | None] = [None] * workers  # None: a slot whose process starts on first use
        self._busy: set[_Worker] = set()
        self._closed = False
        _ALL.add(self)

    def __repr__(self) -> str:
        return f"ProcessPool({self.workers}, name={self.name!r})"

    def __getstate__(self) -> dict:
        raise TypeError(f"{self!r} cannot be pickled: drop it in the holder's __getstate__ (processes do not travel).")

    # --- slots ------------------------------------------------------------------------------------
    def _take(self, block: bool) -> _Worker | None:
        with self._lock:
            while not self._idle:
                if self._closed:
                    raise RuntimeError(f"{self!r} is closed.")
                if not block:
                    return None
                self._lock.wait()
            if self._closed:
                raise RuntimeError(f"{self!r} is closed.")
            worker = self._idle.pop()
        if worker is not None and not worker.proc.is_alive():
            worker.stop()
            worker = None
        if worker is None:
            try:
                worker = _Worker()  # spawning returns at once; readiness arrives on the pipe
            except BaseException:
                with self._lock:
                    self._idle.append(None)
                    self._lock.notify()
                raise
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give(self, worker: _Worker, alive: bool) -> None:
        if not alive:
            worker.stop(grace=0.5 if not worker.proc.is_alive() else 0.0)
        with self._lock:
            self._busy.discard(worker)
            if self._closed:
                worker.stop()
            else:
                self._idle.append(worker if alive else None)
            self._lock.notify()

    # --- work -------------------------------------------------------------------------------------
    def map(self, fn: Callable[[Any], Any], items: list, timeout: float | None = None) -> list[Outcome]:
        """`fn(item)` for every item, in worker processes; one Outcome per item, in order."""
        if timeout is not None and not timeout > 0:
            raise ValueError(f"ProcessPool {self.name!r}: timeout must be > 0 seconds or None, got {timeout!r}.")
        limit = math.inf if timeout is None else float(timeout)
        items = list(items)
        out: list[Outcome | None] = [None] * len(items)
        pending = deque(enumerate(items))
        running: dict[Connection, _Task] = {}
        try:
            while pending or running:
                while pending:
                    worker = self._take(block=not running)
                    if worker is None:
                        break
                    index, item = pending.popleft()
                    task = _Task(index, item, worker, time.monotonic() + START_TIMEOUT, limit)
                    running[worker.conn] = task
                    if worker.ready:
                        self._send(fn, task, running, out)
                now = time.monotonic()
                wait_for = min((t.deadline for t in running.values()), default=now) - now
                if pending:
                    wait_for = min(wait_for, _IDLE_POLL)
                span = None if math.isinf(wait_for) else max(wait_for, 0.0)
                for conn in wait(list(running), timeout=span) if running else []:
                    self._receive(fn, running[cast(Connection, conn)], running, out)
                now = time.monotonic()
                for task in [t for t in running.values() if t.deadline <= now]:
                    del running[task.worker.conn]
                    if task.sent:
                        out[task.index] = Outcome("timeout")
                    else:
                        out[task.index] = Outcome("error", error=f"WorkerDied: a worker of {self!r} did not start.")
                    self._give(task.worker, alive=False)
        except BaseException:
            # Ctrl-C or an error here: the tasks in flight are abandoned, so their processes must not keep burning.
            for task in running.values():
                self._give(task.worker, alive=False)
            raise
        return [o if o is not None else Outcome("error", error="WorkerDied: no result") for o in out]

    def _send(self, fn: Callable, task: _Task, running: dict, out: list) -> None:
        try:
            task.worker.conn.send((fn, task.item))
        except (EOFError, OSError) as exc:  # the process is gone
            self._died(task, running, out, f"{type(exc).__name__}")
            return
        except Exception as exc:  # fn or the item does not pickle; the worker is untouched
            del running[task.worker.conn]
            out[task.index] = Outcome("error", error=f"{type(exc).__name__}: cannot send the task to a worker: {exc}")
            # A half-written message may sit in the pipe: this worker cannot be trusted any more.
            self._give(task.worker, alive=False)
            return
        task.sent = True
        task.deadline = time.monotonic() + START_TIMEOUT  # until the worker has unpickled it and says "started"

    def _receive(self, fn: Callable, task: _Task, running: dict, out: list) -> None:
        try:
            status, value = task.worker.conn.recv()
        except (EOFError, OSError) as exc:
            self._died(task, running, out, type(exc).__name__)
            return
        if status == "ready":
            task.worker.ready = True
            self._send(fn, task, running, out)
            return
        if status == "started":
            task.deadline = time.monotonic() + task.limit
            return
        del running[task.worker.conn]
        out[task.index] = Outcome("ok", value) if status == "ok" else Outcome("error", error=value)
        self._give(task.worker, alive=True)

    def _died(self, task: _Task, running: dict, out: list, cause: str) -> None:
        del running[task.worker.conn]
        self._give(task.worker, alive=False)
        what = "while running a task" if task.sent else "before it started"
        code = exit_text(task.worker.proc.exitcode)
        out[task.index] = Outcome("error", error=f"WorkerDied: the worker process died ({code}) {what}.")

    def close(self) -> None:
        """Stop every idle worker now and every busy one when its task ends; later `map` calls raise."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._lock.notify_all()
        for worker in idle:
            if worker is not None:
                worker.stop()

    def alive(self) -> int:
        """How many worker processes are running now."""
        with self._lock:
            workers = [w for w in self._idle if w is not None] + list(self._busy)
        return sum(w.proc.is_alive() for w in workers)


_ALL: weakref.WeakSet[ProcessPool] = weakref.WeakSet()
_SHARED: dict[tuple[str, int], ProcessPool] = {}
_SHARED_LOCK = threading.Lock()


def shared_pool(key: str, workers: int) -> ProcessPool:
    """The process-wide pool for `(key, workers)`, created on first use and closed at interpreter exit."""
    with _SHARED_LOCK:
        pool = _SHARED.get((key, workers))
        if pool is None or pool._closed:
            pool = _SHARED[(key, workers)] = ProcessPool(workers, name=key)
        return pool


def _close_all() -> None:
    # Workers are not daemonic: multiprocessing's exit hook joins non-daemonic children, so stop them first.
    with _SHARED_LOCK:
        _SHARED.clear()
    for pool in list(_ALL):
        pool.close()
        with pool._lock:
            busy = list(pool._busy)
        for worker in busy:
            worker.stop()


# At exit of the main process (atexit) and of a multiprocessing child (which skips atexit but runs finalizers with
# a priority before joining its children).
atexit.register(_close_all)
multiprocessing.util.Finalize(None, _close_all, exitpriority=100)
