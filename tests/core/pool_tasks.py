"""Module-level tasks the pool tests send to worker processes (a worker imports them by name)."""

from __future__ import annotations

import os
import time


def square(x: float) -> float:
    """x squared."""
    return x * x


def sleepy(seconds: float) -> float:
    """Sleep, then return the seconds slept."""
    time.sleep(seconds)
    return seconds


def spin(seconds: float) -> float:
    """Burn a core for `seconds` (a loop no signal interrupts)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return seconds


def fails(x: object) -> None:
    """Raise."""
    raise ValueError(f"bad {x}")


def dies(code: int) -> None:
    """End the process like a crash."""
    os._exit(code)


def pid(_: object) -> int:
    """The worker's process id."""
    return os.getpid()


def nested(items: list) -> list:
    """Map `square` over `items` with a pool of this (spawned) process: pools work inside pool workers too."""
    from rewardkit.core.pool import shared_pool

    return [o.value if o.ok else o.status for o in shared_pool("nested", 2).map(square, items, timeout=5.0)]


if __name__ == "__main__":  # the Ctrl-C test: map long tasks, print the worker pids, wait to be interrupted
    import sys

    from rewardkit.core.pool import ProcessPool

    pool = ProcessPool(2, name="ctrl-c")
    print(" ".join(str(o.value) for o in pool.map(pid, [0, 0], timeout=60.0)), flush=True)
    try:
        pool.map(spin, [60.0, 60.0], timeout=120.0)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
