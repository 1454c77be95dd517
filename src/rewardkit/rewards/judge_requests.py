"""Sending the judge's requests within its limits: one `openai.AsyncOpenAI` client per event loop (its connection pool
is bound to the loop it was made on), the process-wide in-flight limit, the rate buckets and the budget."""

from __future__ import annotations

import asyncio
import os
import threading
import warnings
import weakref
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from rewardkit.core.errors import ConfigError
from rewardkit.rewards import judge_cache
from rewardkit.rewards.judge_client import BudgetSpent, RequestFailed, RetryPolicy, complete
from rewardkit.rewards.judge_limits import InFlightLimit, TokenBucket


@dataclass(frozen=True)
class Limits:
    """What the sender may do (from the reward's parameters)."""

    base_url: str
    api_key_env: str | None
    max_concurrency: int
    requests_per_minute: float | None
    tokens_per_minute: float | None
    max_requests: int | None
    max_total_tokens: int | None
    max_tokens: int | None  # per reply: part of the token estimate
    policy: RetryPolicy


def read_api_key(variable: str | None, owner: str) -> str:
    """The API key from the environment variable `api_key_env` names; `EMPTY` (what local servers such as vLLM
    accept when they check no key) when none is named."""
    if variable is None:
        return "EMPTY"
    api_key = os.environ.get(variable, "")
    if not api_key:
        raise ConfigError(
            f"{owner}: api_key_env: the environment variable {variable!r} is not set.",
            hint=f"export {variable}=... before running (the key never goes in a config).",
        )
    return api_key


class Sender:
    """Sends requests for one reward; safe to share between threads and event loops; pickles without its runtime."""

    def __init__(self, limits: Limits, owner: str) -> None:
        self.limits = limits
        self.owner = owner
        self.sent = 0  # requests started in this process, for max_requests
        self.tokens = 0  # prompt + completion tokens in this process, for max_total_tokens
        self.budget_said = False
        self._start()

    def _start(self) -> None:
        lim = self.limits
        self._lock = threading.Lock()
        self._gate = InFlightLimit(lim.max_concurrency)
        self._rpm = TokenBucket(lim.requests_per_minute) if lim.requests_per_minute else None
        self._tpm = TokenBucket(lim.tokens_per_minute) if lim.tokens_per_minute else None
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_gate", "_rpm", "_tpm", "_clients")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._start()

    def _client(self) -> Any:
        """The client of the running event loop (made on first use, with the client's own retries off)."""
        import openai

        lim = self.limits
        api_key = read_api_key(lim.api_key_env, self.owner)
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None or client.api_key != api_key:
                client = openai.AsyncOpenAI(base_url=lim.base_url, api_key=api_key, max_retries=0)
                self._clients[loop] = client
        return client

    def _spend(self) -> None:
        """Count one request against the budget, or raise BudgetSpent (saying so once per process)."""
        lim = self.limits
        with self._lock:
            sent, tokens = self.sent, self.tokens
            over = (lim.max_requests is not None and sent >= lim.max_requests) or (
                lim.max_total_tokens is not None and tokens >= lim.max_total_tokens
            )
            if not over:
                self.sent += 1
                return
            say = not self.budget_said
            self.budget_said = True
        if say:
            warnings.warn(
                f"{self.owner}: the judge budget is spent ({sent} requests"
                f"{f' of max_requests {lim.max_requests}' if lim.max_requests is not None else ''}, {tokens} tokens"
                f"{f' of max_total_tokens {lim.max_total_tokens}' if lim.max_total_tokens is not None else ''}); "
                "no more requests are sent: rows not in the cache score None (reason 'budget spent').",
                RuntimeWarning,
                stacklevel=2,
            )
        raise BudgetSpent()

    async def fetch_all(
        self, missing: dict[str, dict], conn: Any, model: str, counts: Counter
    ) -> dict[str, dict | BaseException]:
        """Send each request once, concurrently within the limits, storing each reply in the cache as it arrives;
        {key: reply, or the RequestFailed / BudgetSpent that ended it}. `counts` gets requests and tokens."""
        client = self._client()
        results: dict[str, dict | BaseException] = {}

        async def one(key: str, request: dict) -> None:
            estimate = sum(len(m["content"]) for m in request["messages"]) / 4 + (self.limits.max_tokens or 0)

            @asynccontextmanager
            async def slot() -> AsyncIterator[None]:
                if self._rpm is not None:
                    await self._rpm.take(1)
                if self._tpm is not None:
                    await self._tpm.take(estimate)
                async with self._gate:
                    self._spend()  # inside the gate: the tokens of the requests before it are counted
                    counts["requests"] += 1
                    yield

            try:
                reply = await complete(client, request, self.limits.policy, slot)
            except (RequestFailed, BudgetSpent) as exc:
                results[key] = exc
                return
            prompt, completion = reply["usage"]["prompt_tokens"], reply["usage"]["completion_tokens"]
            counts["prompt_tokens"] += prompt
            counts["completion_tokens"] += completion
            with self._lock:
                self.tokens += prompt + completion
            if self._tpm is not None and prompt + completion:
                self._tpm.settle(prompt + completion - estimate)
            if conn is not None:
                judge_cache.store(conn, key, model, reply)
            results[key] = reply

        tasks = [asyncio.ensure_future(one(k, r)) for k, r in missing.items()]
        try:
            await asyncio.gather(*tasks)
        except BaseException:  # a setup error (401, no key) or a cancellation: stop the other requests too
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return results
