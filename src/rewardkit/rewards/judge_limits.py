"""Limits on the judge's requests that hold across threads and event loops of one process: requests in flight (a
semaphore any loop can wait on) and token buckets for requests and tokens per minute.

asyncio.Semaphore belongs to one event loop; `rewardkit score` runs one loop per call and TRL runs its own, and
several threads may score at once, so these use a thread lock for the count and wake a waiter on its own loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque


class InFlightLimit:
    """At most `limit` holders at once, across every thread and event loop of the process.

    >>> import asyncio
    >>> gate = InFlightLimit(2)
    >>> async def one() -> int:
    ...     async with gate:
    ...         return gate.in_flight
    >>> async def many() -> list[int]:
    ...     return await asyncio.gather(*(one() for _ in range(5)))
    >>> max(asyncio.run(many())) <= 2
    True
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self.in_flight < self.limit:
                    self.in_flight += 1
                    return
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: pass the turn on
                raise

    async def __aexit__(self, *exc: object) -> None:
        with self._lock:
            self.in_flight -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while True:
            with self._lock:
                if not self._waiters or self.in_flight >= self.limit:
                    return
                loop, waiter = self._waiters.popleft()
            if loop.is_closed():
                continue
            try:
                loop.call_soon_threadsafe(self._set, waiter)
                return
            except RuntimeError:  # the loop closed in between
                continue

    def _set(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done():  # cancelled while the wake-up travelled: wake the next one
            self._wake_one()
        else:
            waiter.set_result(None)


class TokenBucket:
    """`per_minute` units a minute, refilled continuously; holds at most one second's worth (at least 1 unit).

    `take(n)` waits until the bucket holds min(n, capacity) units, then removes n (the level may go below zero:
    a request larger than the capacity waits for a full bucket, and the next one waits for the debt).
    `settle(n)` adds a correction afterwards (the real token count minus the estimate).
    """

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def take(self, amount: float) -> None:
        """Wait for `amount` units (see the class docstring), then take them."""
        need = min(amount, self.capacity)
        while True:
            with self._lock:
                self._refill()
                if self.level >= need:
                    self.level -= amount
                    return
                wait = (need - self.level) / self.rate
            await asyncio.sleep(wait)

    def settle(self, amount: float) -> None:
        """Take `amount` more units without waiting (negative gives units back)."""
        with self._lock:
            self._refill()
            self.level = min(self.capacity, self.level - amount)
