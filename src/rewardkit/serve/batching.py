"""Merging concurrent calls to one model-backed component into one call (one forward pass for many requests).

Requests that arrive within `max_wait` seconds of the first one waiting (or until `max_rows` rows are waiting)
are concatenated and scored by a single call on the batcher's own thread; each request gets its slice back.
Only calls with the same columns merge. If a merged call raises, each request is scored alone, so one bad
request fails by itself and never takes the others' rows with it.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

# What a batched call returns for its rows: the scores and, per row, why it is None (or None).
RowResult = tuple[list[float | None], list[str | None]]


@dataclass
class _Job:
    kwargs: dict[str, Any]
    rows: int
    future: Future = field(default_factory=Future)

    def shape(self) -> tuple:
        """Calls merge only when they pass the same keywords, each a list or each None."""
        return tuple(sorted((k, v is None) for k, v in self.kwargs.items()))


def merge(jobs: list[_Job]) -> dict[str, Any]:
    """One keyword call holding every job's rows in order."""
    return {
        key: None if jobs[0].kwargs[key] is None else [v for job in jobs for v in job.kwargs[key]]
        for key in jobs[0].kwargs
    }


class MicroBatcher:
    """Runs `call(kwargs) -> (scores, reasons)` on one thread, merging calls that arrive together.

    Args:
        call (`Callable`): scores one keyword call (every value a per-row list, or None) and returns one score
            and one None reason per row.
        max_wait (`float`, defaults to `0.01`): seconds the first waiting call waits for others to join it.
        max_rows (`int`, defaults to `256`): a merged call holds at most this many rows (a larger request
            runs alone).
        name (`str`): the thread's name.

    Example:
    >>> batcher = MicroBatcher(lambda kw: ([float(len(t)) for t in kw["completions"]], [None] * len(kw["completions"])))
    >>> batcher.submit({"completions": ["ab", "c"]})
    ([2.0, 1.0], [None, None])
    >>> batcher.close()
    """

    def __init__(
        self, call: Callable[[dict[str, Any]], RowResult], max_wait: float = 0.01, max_rows: int = 256, name: str = ""
    ) -> None:
        self.call = call
        self.max_wait = max_wait
        self.max_rows = max_rows
        self.calls = 0  # merged calls made (what the tests and /health read)
        self.merged = 0  # requests that shared a call with another
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"rewardkit-batcher-{name}", daemon=True)
        self._thread.start()

    def submit(self, kwargs: dict[str, Any]) -> RowResult:
        """Score these rows (blocks until done); raises what the call raised on them."""
        if self._closed.is_set():
            raise RuntimeError("the batcher is closed (the server is shutting down).")
        completions = kwargs.get("completions") or []
        job = _Job(kwargs, len(completions))
        self._queue.put(job)
        return job.future.result()

    def close(self) -> None:
        """Finish the calls already waiting, then stop the thread."""
        self._closed.set()
        self._queue.put(None)
        self._thread.join()

    def _loop(self) -> None:
        carry: _Job | None = None  # a call that did not fit the last window starts the next one
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is None:
                return
            jobs, rows, stop = [first], first.rows, False
            deadline = time.monotonic() + self.max_wait
            while rows < self.max_rows:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    job = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                if rows + job.rows > self.max_rows:
                    carry = job
                    break
                jobs.append(job)
                rows += job.rows
            groups: dict[tuple, list[_Job]] = {}
            for job in jobs:
                groups.setdefault(job.shape(), []).append(job)
            for group in groups.values():
                self._run(group)
            if stop:
                if carry is not None:
                    self._run([carry])
                return

    def _run(self, jobs: list[_Job]) -> None:
        if len(jobs) > 1:
            try:
                scores, reasons = self.call(merge(jobs))
            except BaseException:  # one request's bad rows must not fail the others: each alone
                for job in jobs:
                    self._run([job])
                return
            self.calls += 1
            self.merged += len(jobs)
            start = 0
            for job in jobs:
                job.future.set_result((scores[start : start + job.rows], reasons[start : start + job.rows]))
                start += job.rows
            return
        job = jobs[0]
        self.calls += 1
        try:
            job.future.set_result(self.call(job.kwargs))
        except BaseException as exc:  # handed to the request's thread, which raises it there
            job.future.set_exception(exc)
