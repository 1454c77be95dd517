"""One judge request through the official `openai` async client, with rewardkit's retry policy.

Why the `openai` client: it speaks exactly the chat-completions protocol every OpenAI-compatible server implements
(vLLM, SGLang, hosted APIs), returns typed responses (usage, per-token `logprobs` with `top_logprobs`), maps HTTP
failures to typed errors (RateLimitError carries the response and its Retry-After header) and takes a per-request
timeout. Its own retries are turned off (`max_retries=0`): the loop below decides what is retried (connection
errors, timeouts, 5xx, 429 with Retry-After honoured), waits between tries without holding a concurrency slot,
and counts every attempt against the budget.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from rewardkit.core.errors import ConfigError

RETRY_AFTER_MAX = (
    300.0  # seconds: a longer Retry-After is cut to this (the reward keeps retrying, not sleeping an hour)
)
# HTTP statuses that say the setup is wrong (key, endpoint, model), the same for every row: stop, whatever on_error.
SETUP_STATUSES = {401: "the API key was refused", 403: "access was refused", 404: "the endpoint or model was not found"}


class RequestFailed(Exception):
    """The last try of a request failed; `reason` is what none_reasons counts ("rate limited", "timeout", ...)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class BudgetSpent(Exception):
    """max_requests or max_total_tokens is reached: no more requests."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one request."""

    max_retries: int = 4
    backoff: float = 1.0  # seconds before the first retry; doubles each time, with jitter
    max_backoff: float = 30.0
    timeout: float = 60.0  # seconds one attempt may take

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt` (0-based): the server's Retry-After when it gave one."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), RETRY_AFTER_MAX)
        ceiling = min(self.max_backoff, self.backoff * 2**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # jitter: retries of many rows do not arrive together


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from a `retry-after-ms` or `retry-after` header (a number or an HTTP date), else None.

    >>> retry_after_seconds({"retry-after": "2"}), retry_after_seconds({"retry-after-ms": "1500"})
    (2.0, 1.5)
    >>> retry_after_seconds({"retry-after": "soon"}) is None
    True
    """
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            seconds = when.timestamp() - time.time()
        if seconds == seconds and seconds not in (float("inf"), float("-inf")):  # NaN and inf are no answer
            return max(0.0, seconds)
    return None


def reply_of(response: Any, logprobs: bool) -> dict[str, Any]:
    """The parts of a chat completion the judge keeps: text, per-token alternatives (log-probability mode), usage."""
    choice = response.choices[0]
    text = choice.message.content
    if text is not None and not isinstance(text, str):
        raise TypeError(f"message content is {type(text).__name__}")
    positions = None
    if logprobs:
        content = getattr(choice.logprobs, "content", None) or []
        positions = [[[c.token, c.logprob]] + [[t.token, t.logprob] for t in (c.top_logprobs or [])] for c in content]
    usage = getattr(response, "usage", None)
    refusal = getattr(choice.message, "refusal", None)  # OpenAI's refusal field; a content filter says it by finish
    if not refusal and getattr(choice, "finish_reason", None) == "content_filter":
        refusal = "content_filter"
    return {
        "text": text or "",
        "refusal": str(refusal) if refusal else None,
        "positions": positions,
        "usage": {
            "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
            "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
        },
    }


async def complete(
    client: Any,
    request: dict[str, Any],
    policy: RetryPolicy,
    attempt_slot: Callable[[], AbstractAsyncContextManager[Any]],
) -> dict[str, Any]:
    """Send `request` (chat.completions.create keywords), retrying per `policy`; the reply as `reply_of` gives it.

    Each try runs inside `attempt_slot()` (budget, rate limits, a concurrency slot); the waits between tries do
    not. Raises RequestFailed after the last try, BudgetSpent from `attempt_slot`, and
    ConfigError when the server says the setup is wrong (401, 403, 404).
    """
    import openai

    attempt = 0
    while True:
        retry_after: float | None = None
        try:
            async with attempt_slot():
                response = await client.chat.completions.create(**request, timeout=policy.timeout)
            return reply_of(response, bool(request.get("logprobs")))
        except openai.APITimeoutError as exc:
            failure = RequestFailed("timeout", f"no reply within {policy.timeout}s ({exc})")
        except openai.APIConnectionError as exc:
            failure = RequestFailed("connection error", str(exc))
        except openai.RateLimitError as exc:
            failure = RequestFailed("rate limited", str(exc))
            retry_after = retry_after_seconds(exc.response.headers)
        except openai.InternalServerError as exc:
            failure = RequestFailed("server error", str(exc))
            retry_after = retry_after_seconds(exc.response.headers)
        except openai.APIStatusError as exc:
            if exc.status_code in SETUP_STATUSES:
                raise ConfigError(
                    f"judge: {request.get('model')!r} at {client.base_url}: {SETUP_STATUSES[exc.status_code]} "
                    f"(HTTP {exc.status_code}: {exc.message}).",
                    hint="check base_url, model and the api_key_env variable.",
                ) from exc
            raise RequestFailed(f"HTTP {exc.status_code}", exc.message) from exc  # a bad request is not retried
        except (ValueError, TypeError, AttributeError, IndexError, openai.APIResponseValidationError) as exc:
            # Malformed JSON or a reply without choices/message: a broken proxy or server, not worth a retry.
            raise RequestFailed("malformed reply", f"{type(exc).__name__}: {exc}") from exc
        if attempt >= policy.max_retries:
            raise failure
        await asyncio.sleep(policy.delay(attempt, retry_after))
        attempt += 1
