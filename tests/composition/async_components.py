"""Module-level async reward functions of fixed latency (picklable), for the async composition tests."""

from __future__ import annotations

import asyncio
import time

CALLS: list[tuple[str, float, float]] = []  # (name, start, end) of every call in this process, monotonic seconds


async def _timed(name: str, completions: list, delay: float, value: float) -> list[float]:
    start = time.monotonic()
    await asyncio.sleep(delay)
    CALLS.append((name, start, time.monotonic()))
    return [value + len(str(c)) % 2 for c in completions]


async def slow_a(completions, **kwargs):
    """0.5 s of awaiting, then 1.0 or 2.0 by the completion's length parity."""
    return await _timed("slow_a", completions, 0.5, 1.0)


async def slow_b(completions, **kwargs):
    """0.5 s of awaiting, then 2.0 or 3.0 by the completion's length parity."""
    return await _timed("slow_b", completions, 0.5, 2.0)


def window(names: tuple[str, ...] = ("slow_a", "slow_b")) -> float:
    """Seconds from the first start to the last end of the recorded calls of `names`."""
    spans = [(s, e) for n, s, e in CALLS if n in names]
    return max(e for _, e in spans) - min(s for s, _ in spans)


async def slow_len(completions, **kwargs):
    """0.5 s of awaiting, then each completion's length (a remote scorer's stand-in)."""
    return await _timed("slow_len", completions, 0.5, 0.0)


async def slow_digits(completions, **kwargs):
    """0.5 s of awaiting, then whether each completion holds a digit."""
    start = time.monotonic()
    await asyncio.sleep(0.5)
    CALLS.append(("slow_digits", start, time.monotonic()))
    return [float(any(ch.isdigit() for ch in str(c))) for c in completions]
