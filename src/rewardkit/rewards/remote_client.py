"""Sending rows to `rewardkit serve` servers (POST /score): shares across URLs, retries, failover.

A batch is cut into one contiguous share per live server (and into requests of at most `max_rows` rows), sent
concurrently. A request is retried on a connection error, a timeout, a 5xx or a 429 (waiting what Retry-After
says, else an exponential backoff). A server whose retries run out is marked down for `revive_after` seconds,
logged once, and its share goes to the servers still up; when none is left, `ServerFailed` names the last URL
and the cause. A 4xx other than 429 is the request's fault and is never retried (`Refused`). Every score comes
from a server's answer: nothing is filled in.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("rewardkit.remote")

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class ServerFailed(Exception):
    """A server did not answer after every retry."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause


class Refused(Exception):
    """A server refused the request (4xx): the same request fails on every server."""

    def __init__(self, url: str, status: int, field: str, message: str) -> None:
        super().__init__(f"{url} answered {status} ({field}): {message}")
        self.url, self.status, self.field, self.message = url, status, field, message


@dataclass
class Servers:
    """The URLs of one `remote` reward and which are down (shared by every call, thread-safe)."""

    urls: list[str]
    revive_after: float = 30.0
    down: dict[str, float] = field(default_factory=dict)  # url -> when it was marked down
    lock: threading.Lock = field(default_factory=threading.Lock)

    def live(self) -> list[str]:
        """The URLs to use now: those up, and those down for longer than `revive_after` (tried again)."""
        now = time.monotonic()
        with self.lock:
            return [u for u in self.urls if now - self.down.get(u, -math.inf) >= self.revive_after]

    def mark_down(self, url: str, cause: str, others: list[str]) -> None:
        """Take `url` out of rotation; logged once per failure, not per request."""
        with self.lock:
            newly = url not in self.down or time.monotonic() - self.down[url] >= self.revive_after
            self.down[url] = time.monotonic()
        if newly:
            to = ", ".join(others) or "no other server"
            log.warning("remote: %s failed (%s); its rows go to %s", url, cause, to)

    def mark_up(self, url: str) -> None:
        """`url` answered: back in rotation."""
        with self.lock:
            was_down = self.down.pop(url, None) is not None
        if was_down:
            log.warning("remote: %s answers again", url)


@dataclass(frozen=True)
class Policy:
    """How hard to try one request."""

    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5  # seconds before the first retry, doubled each time
    max_rows: int = 1024
    token: str | None = None


def retry_after(value: str | None, cap: float) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), at most `cap`; None if absent/bad.

    >>> retry_after("2", 30), retry_after("999", 30), retry_after("soon", 30)
    (2.0, 30, None)
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), cap)


def json_scalar(value: Any) -> Any:
    """A 0-d numpy / torch number as a Python number (what json cannot write by itself)."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _answer_rows(url: str, response: httpx.Response, n: int) -> list[dict]:
    try:
        body = response.json()
    except ValueError:
        raise Refused(
            url, response.status_code, "body", "the answer is not JSON (is this a rewardkit server?)"
        ) from None
    rows = body.get("rows") if isinstance(body, dict) else None
    if not isinstance(rows, list) or len(rows) != n or not all(isinstance(r, dict) and "score" in r for r in rows):
        raise Refused(url, response.status_code, "rows", f"the answer does not hold {n} scored rows")
    return rows


async def _post(client: httpx.AsyncClient, url: str, payload: dict, n: int, policy: Policy) -> list[dict]:
    """One request with its retries: the server's rows, or ServerFailed / Refused."""
    import httpx

    # numpy / torch scalars in columns go as Python numbers (checked by the caller: nothing else that JSON lacks)
    body = json.dumps(payload, default=json_scalar, allow_nan=False, ensure_ascii=False).encode()
    cause = ""
    for attempt in range(policy.retries + 1):
        wait = policy.backoff * 2**attempt
        try:
            response = await client.post(f"{url}/score", content=body, headers={"Content-Type": "application/json"})
        except httpx.TransportError as exc:  # refused, reset, timed out, closed mid-answer
            cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            if response.status_code < 300:
                return _answer_rows(url, response, n)
            if response.status_code not in RETRY_STATUS:
                try:
                    error = response.json()["error"]
                    field_name, message = str(error["field"]), str(error["message"])
                except (ValueError, KeyError, TypeError):
                    field_name, message = "body", response.text[:200]
                raise Refused(url, response.status_code, field_name, message)
            cause = f"HTTP {response.status_code}"
            asked = retry_after(response.headers.get("retry-after"), policy.timeout)
            wait = asked if asked is not None else wait
        if attempt < policy.retries:
            await asyncio.sleep(wait)
    raise ServerFailed(url, f"{cause} after {policy.retries + 1} tries")


def _cut(start: int, stop: int, parts: int, max_rows: int) -> list[tuple[int, int]]:
    """[start, stop) in `parts` contiguous shares, each cut again into pieces of at most max_rows.

    >>> _cut(0, 10, 2, 3)
    [(0, 3), (3, 5), (5, 8), (8, 10)]
    """
    size = -(-(stop - start) // max(parts, 1))
    pieces = []
    for share in range(start, stop, max(size, 1)):
        end = min(share + size, stop)
        pieces += [(s, min(s + max_rows, end)) for s in range(share, end, max_rows)]
    return pieces


def _slice(payload: dict, start: int, stop: int) -> dict:
    columns = {k: v[start:stop] for k, v in payload["columns"].items()}
    prompts = payload["prompts"][start:stop] if payload["prompts"] is not None else None
    return {"completions": payload["completions"][start:stop], "prompts": prompts, "columns": columns}


async def score_rows(servers: Servers, payload: dict, policy: Policy) -> list[dict]:
    """Every row of `payload` (a /score body) scored by the servers: one answer row per completion, in order."""
    import httpx

    n = len(payload["completions"])
    results: list[dict | None] = [None] * n
    headers = {"Authorization": f"Bearer {policy.token}"} if policy.token else {}
    todo = _cut(0, n, len(servers.live()) or 1, policy.max_rows)
    last: ServerFailed | None = None
    async with httpx.AsyncClient(timeout=policy.timeout, headers=headers) as client:
        while todo:
            live = servers.live()
            if not live:
                raise last or ServerFailed(servers.urls[0], "marked down by an earlier call")
            sent = [(piece, live[k % len(live)]) for k, piece in enumerate(todo)]
            outcomes = await asyncio.gather(
                *(_post(client, url, _slice(payload, a, b), b - a, policy) for (a, b), url in sent),
                return_exceptions=True,
            )
            todo = []
            for ((a, b), url), outcome in zip(sent, outcomes):
                if isinstance(outcome, ServerFailed):
                    last = outcome
                    others = [u for u in live if u != url]
                    servers.mark_down(url, outcome.cause, others)
                    todo += _cut(a, b, len(others) or 1, policy.max_rows)
                elif isinstance(outcome, BaseException):
                    raise outcome
                else:
                    servers.mark_up(url)
                    results[a:b] = outcome
    return [r for r in results if r is not None]
