"""Running a coroutine to its end from synchronous code, whether or not the caller's thread runs an event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def _loop() -> asyncio.AbstractEventLoop:
    """The process's background event loop (a daemon thread), started on first use."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="rewardkit-async", daemon=True).start()
            _LOOP = loop
        return _LOOP


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def run_sync(awaitable: Awaitable[T]) -> T:
    """Await `awaitable` from sync code, on one background event loop shared by every such call.

    One loop for the whole process: clients an async reward keeps (HTTP connection pools) stay bound to the loop
    they were made on, calls from many threads run concurrently, and a caller whose own thread runs a loop (a
    notebook, a server) is not refused. Ctrl-C while waiting cancels the coroutine.
    """
    coro = _await(awaitable)
    loop = _loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:  # called from inside the shared loop (a sync reward inside an async one): a loop of its own
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = asyncio.run(coro)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=run, name="rewardkit-async-nested")
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise
