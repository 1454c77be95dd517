"""LLM-as-judge: a model behind any OpenAI-compatible chat-completions endpoint scores each completion by a rubric.

Requests go through the official `openai` async client (see `judge_client` for why and for the retry policy),
at most `max_concurrency` at once across the process, within `requests_per_minute` / `tokens_per_minute`;
replies are cached in SQLite (`judge_cache`), so the same request is never paid for twice. Every request, cache
hit and token is counted (`usage`, TRL's `log_metric`, `rewardkit score`).
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import warnings
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pydantic import Field

from rewardkit.core.errors import ConfigError, RewardError
from rewardkit.core.validation import Params, Seconds
from rewardkit.rewards import judge_cache
from rewardkit.rewards.base import TRAINER_KWARGS, Reward, RewardParams
from rewardkit.rewards.inputs import Reference
from rewardkit.rewards.judge_client import BudgetSpent, RequestFailed, RetryPolicy, complete
from rewardkit.rewards.judge_limits import InFlightLimit, TokenBucket
from rewardkit.rewards.judge_parse import ReplyParser
from rewardkit.rewards.judge_prompt import FIXED_FIELDS, check_fields, field_text, render, template_fields

_CALL = "_judge_call"  # the keyword under which __call__ hands ascore_batch the call's counters
USAGE_KEYS = ("requests", "cache_hits", "prompt_tokens", "completion_tokens", "failures", "unparsable")


class ScoreRange(Params):
    """The judge's score scale."""

    min: float = Field(0.0, description="Lowest score the rubric gives (scaled to 0).")
    max: float = Field(10.0, description="Highest score the rubric gives (scaled to 1).")


@dataclass
class CallUsage:
    """What one call of the reward cost and why rows scored None."""

    counts: Counter = field(default_factory=Counter)  # requests, cache_hits, tokens, failures, unparsable
    none_reasons: Counter = field(default_factory=Counter)
    failed: RewardError | None = None  # under on_error: raise, the error already raised in this call


class Judge(Reward):
    """Scores each completion with a judge model behind an OpenAI-compatible chat-completions endpoint.

    The judge sees `system_template` (optional) and `user_template`, whose fields `{prompt}`, `{completion}`,
    `{reference}` and `{<dataset column>}` are filled in one pass (a value is never read as a template; `{{`
    and `}}` are literal braces). A chat prompt fills `{prompt}` with its last user message. A field that names
    nothing is a ConfigError before any request. The reply is read by exactly one of `score` (the last number
    within [min, max], a number right after "/" or "out of" excepted, scaled to [0, 1]) or `choices` (the last
    label standing alone in the reply, case-sensitive, gives its value); with `json_field` the reply is a JSON
    object and that field is read (sent with `response_format: {type: json_object}` unless `response_format`
    is false); with `logprobs`, the expected value over the top log-probabilities of the first generated token
    that is a label (G-Eval; single-digit scores or choices). A reply that cannot be read scores None
    (counted as `unparsable` in `none_reasons`), never 0.

    Requests: the `openai` client with its own retries off; each request is tried `max_retries` more times on
    connection errors, timeouts (`request_timeout`), 5xx and 429 (waiting the server's Retry-After, else
    `backoff` doubling, with jitter). After the last try the row follows `on_error` (raise / none / zero), the
    reason counted. HTTP 401/403/404 stop with a ConfigError whatever `on_error` says (every row would fail).
    At most `max_concurrency` requests are in flight in the process; `requests_per_minute` and
    `tokens_per_minute` are token buckets (tokens estimated as characters / 4 + max_tokens, corrected by the
    reply's usage). `max_requests` / `max_total_tokens` stop sending once reached (per process): the rows left
    score None (`budget spent`), said once as a warning.

    Cache: SQLite at `cache_path` (default `$REWARDKIT_CACHE/judge.sqlite`, else
    `~/.cache/rewardkit/judge.sqlite`), keyed by endpoint, model, rendered messages, sampling parameters and
    parser; `cache: false` turns it off. Identical requests within a call are sent once. With temperature > 0
    a cached reply is reused as it is.

    Accounting: `usage` holds the totals (requests, cache_hits, prompt_tokens, completion_tokens, failures,
    unparsable); under TRL each call logs its own through `log_metric` as `rewardkit/<name>/<counter>`.

    Args:
        base_url (`str`): the endpoint, e.g. `http://127.0.0.1:8000/v1`.
        model (`str`): the judge model's name on that server.
        user_template (`str`): the user message (fields as above).
        system_template (`str`, *optional*): the system message.
        api_key_env (`str`, *optional*): the environment variable holding the API key (the key itself never
            appears in a config or a log); unset: the placeholder key `EMPTY` (local servers).
        score (`{min, max}`, *optional*) / choices (`dict[str, float]`, *optional*): the reply's scale (one of them).
        json_field (`str`, *optional*), response_format (`bool`, defaults to True), logprobs (`bool`, defaults
            to False), top_logprobs (`int`, defaults to 20): see above.
        temperature (`float`, defaults to 0), top_p, max_tokens, seed, extra_body: sampling parameters (extra_body
            is sent as is, e.g. vLLM's `structured_outputs`).
        cache (`bool`, defaults to True), cache_path (`str`, *optional*).
        max_concurrency (`int`, defaults to 8), requests_per_minute, tokens_per_minute, max_requests,
            max_total_tokens: the limits above.
        max_retries (`int`, defaults to 4), backoff (`float`, defaults to 1.0 s), request_timeout (`float`,
            defaults to 60 s).

    Example:
    >>> from rewardkit import get_reward
    >>> judge = get_reward(
    ...     "judge", base_url="http://127.0.0.1:8000/v1", model="judge", score={"min": 0, "max": 10},
    ...     user_template="Question: {prompt}\\nAnswer: {completion}\\nRate the answer 0-10. Reply 'Score: N'.",
    ... )
    >>> judge(prompts=["2+2?"], completions=["4"])  # doctest: +SKIP
    [0.9]
    """

    name = "judge"

    class Params(RewardParams):
        base_url: str = Field(pattern=r"^https?://\S+$", description="OpenAI-compatible endpoint, e.g. .../v1.")
        model: str = Field(min_length=1, description="The judge model's name on the server.")
        user_template: str = Field(min_length=1, description="User message; fields {prompt} {completion} ...")
        system_template: Optional[str] = Field(None, description="System message (same fields).")
        api_key_env: Optional[str] = Field(
            None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Environment variable holding the API key."
        )
        score: Optional[ScoreRange] = Field(None, description="Score scale {min, max}, scaled to [0, 1].")
        choices: Optional[dict[str, float]] = Field(None, description="Label -> score.")
        json_field: Optional[str] = Field(None, min_length=1, description="Read this field of a JSON reply.")
        response_format: bool = Field(True, description="With json_field: send response_format json_object.")
        logprobs: bool = Field(False, description="Expected score from the score token's top log-probabilities.")
        top_logprobs: int = Field(20, ge=1, le=20, description="Alternatives per token in logprobs mode.")
        temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature (0: greedy).")
        top_p: Optional[float] = Field(None, gt=0, le=1, description="Nucleus sampling.")
        max_tokens: Optional[int] = Field(None, ge=1, description="Longest reply, in tokens.")
        seed: Optional[int] = Field(None, description="Sampling seed (servers that support it).")
        extra_body: Optional[dict[str, Any]] = Field(None, description="Extra request fields, sent as is.")
        cache: bool = Field(True, description="Keep replies in the SQLite cache.")
        cache_path: Optional[str] = Field(None, min_length=1, description="Cache file (default under ~/.cache).")
        max_concurrency: int = Field(8, ge=1, le=1024, description="Requests in flight at most (per process).")
        requests_per_minute: Optional[float] = Field(None, gt=0, description="Request rate limit.")
        tokens_per_minute: Optional[float] = Field(None, gt=0, description="Token rate limit (estimated).")
        max_requests: Optional[int] = Field(None, ge=0, description="Stop sending after this many requests.")
        max_total_tokens: Optional[int] = Field(None, ge=0, description="Stop sending after this many tokens.")
        max_retries: int = Field(4, ge=0, le=20, description="Retries per request after the first try.")
        backoff: Seconds = Field(1.0, description="Seconds before the first retry (doubles, with jitter).")
        request_timeout: Seconds = Field(60.0, description="Seconds one request may take.")

    def __init__(self, params: RewardParams | None = None, /, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        p = self.params
        if p.timeout is not None:
            raise ConfigError(
                f"reward {self.name!r}: timeout is not supported (a worker process cannot share the request "
                "limits or the event loop).",
                hint="use request_timeout (seconds per request) and max_retries.",
            )
        self.parser = ReplyParser(
            score_range=(p.score.min, p.score.max) if p.score is not None else None,
            choices=p.choices,
            json_field=p.json_field,
            logprobs=p.logprobs,
        )
        self.templates = {"user_template": p.user_template}
        if p.system_template is not None:
            self.templates["system_template"] = p.system_template
        check_fields(f"reward {self.__name__!r}", self.templates, bool(p.reference), None)
        self.fields = list(dict.fromkeys(f for t in self.templates.values() for f in template_fields(t)))
        self.policy = RetryPolicy(max_retries=p.max_retries, backoff=p.backoff, timeout=p.request_timeout)
        self.usage: Counter = Counter({k: 0 for k in USAGE_KEYS})  # totals of this process (see _finish)
        self._sent = 0  # requests started, for max_requests
        self._tokens_spent = 0  # prompt + completion tokens, for max_total_tokens
        self._budget_said = False
        self._start_runtime()

    @property
    def needs_reference(self) -> bool:  # type: ignore[override]  # a class constant elsewhere; here a parameter
        """Whether a reference column is named: the base class then reads it (and skips rows without one)."""
        return bool(self.params.reference)

    def _start_runtime(self) -> None:
        """Locks, limits and totals: rebuilt in each process (they do not pickle)."""
        p = self.params
        self._lock = threading.Lock()
        self._gate = InFlightLimit(p.max_concurrency)
        self._rpm = TokenBucket(p.requests_per_minute) if p.requests_per_minute else None
        self._tpm = TokenBucket(p.tokens_per_minute) if p.tokens_per_minute else None

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        for name in ("_lock", "_gate", "_rpm", "_tpm"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._start_runtime()

    @property
    def cache_path(self) -> Path:
        """The SQLite file replies are kept in."""
        p = self.params.cache_path
        return Path(p).expanduser() if p else judge_cache.default_cache_path()

    # --- the call --------------------------------------------------------------------------------
    def __call__(
        self,
        prompts: list | None = None,
        completions: list | None = None,
        completion_ids: list | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        call = CallUsage()
        kwargs[_CALL] = call
        out = super().__call__(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
        self._finish(call, out, kwargs.get("log_metric"))
        return out

    def _finish(self, call: CallUsage, out: list[float | None], log_metric: Any) -> None:
        """The call's None reasons replace the base's 'returned None'; totals and TRL's log get its counts."""
        reasons = {k: v for k, v in self.none_reasons.items() if k not in ("returned None", "error")}
        reasons.update({k: v for k, v in call.none_reasons.items() if v})
        self.none_reasons = reasons
        with self._lock:
            self.usage.update(call.counts)
        if log_metric is not None:
            for key in USAGE_KEYS:
                log_metric(f"rewardkit/{self.__name__}/{key}", float(call.counts.get(key, 0)))

    def score_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        """Run `ascore_batch` to completion (until the base class awaits it itself)."""
        from rewardkit.rewards.function_rewards import _run_coroutine

        call = context.get(_CALL)
        if call is not None and call.failed is not None:
            # The base class retries a failed batch row by row to find the row; the judge already retried each
            # request, so the failure is raised again instead of sending the requests a second time.
            raise call.failed
        return list(_run_coroutine(self.ascore_batch(completions, references, **context)))

    async def ascore_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        """Score the rows: cached replies first, then the missing requests, concurrently within the limits."""
        call = context.get(_CALL) or CallUsage()
        columns = {k for k in context if k not in TRAINER_KWARGS and not k.startswith("_")}
        check_fields(f"reward {self.__name__!r}", self.templates, bool(self.params.reference), columns)
        requests = [self._request(i, completions, references, context) for i in range(len(completions))]
        keys = [judge_cache.cache_key(self._key_of(r)) for r in requests]
        conn = judge_cache.connect(self.cache_path) if self.params.cache else None
        try:
            replies: dict[str, dict | BaseException] = {}
            if conn is not None:
                replies.update(judge_cache.lookup(conn, keys))
            missing = {k: r for k, r in zip(keys, requests) if k not in replies}
            # A row answered without a request of its own: from the cache, or by an identical row of this call.
            call.counts["cache_hits"] += len(keys) - len(missing)
            if missing:
                replies.update(await self._fetch_all(missing, conn, call))
            if conn is not None:
                judge_cache.add_counts(
                    conn,
                    {
                        "hits": call.counts["cache_hits"],
                        "requests": call.counts["requests"],
                        "prompt_tokens": call.counts["prompt_tokens"],
                        "completion_tokens": call.counts["completion_tokens"],
                    },
                )
        finally:
            if conn is not None:
                conn.close()
        return self._scores(keys, replies, call)

    def _request(self, i: int, completions: list[str], references: list[Reference] | None, context: dict) -> dict:
        """The chat-completions keywords for row i."""
        values: dict[str, str] = {}
        for name in self.fields:
            if name == "completion":
                values[name] = completions[i]
                continue
            source = (
                references if name == "reference" else context.get("prompts") if name == "prompt" else context.get(name)
            )
            value = source[i] if isinstance(source, list) else source
            values[name] = field_text(value, name, f"reward {self.__name__!r}")
        messages = []
        if self.params.system_template is not None:
            messages.append({"role": "system", "content": render(self.params.system_template, values)})
        messages.append({"role": "user", "content": render(self.params.user_template, values)})
        p = self.params
        request: dict[str, Any] = {"model": p.model, "messages": messages, "temperature": p.temperature}
        for name in ("top_p", "max_tokens", "seed"):
            if getattr(p, name) is not None:
                request[name] = getattr(p, name)
        if p.logprobs:
            request.update(logprobs=True, top_logprobs=p.top_logprobs)
        if p.json_field is not None and p.response_format:
            request["response_format"] = {"type": "json_object"}
        if p.extra_body:
            request["extra_body"] = p.extra_body
        return request

    def _key_of(self, request: dict) -> dict:
        return {"endpoint": self.params.base_url.rstrip("/"), "request": request, "parser": self.parser.describe()}

    async def _fetch_all(self, missing: dict[str, dict], conn: Any, call: CallUsage) -> dict[str, dict | BaseException]:
        """Send each missing request once (identical rows share one), storing each reply as it arrives."""
        import openai

        p = self.params
        api_key = "EMPTY"
        if p.api_key_env is not None:
            api_key = os.environ.get(p.api_key_env, "")
            if not api_key:
                raise ConfigError(
                    f"reward {self.__name__!r}: api_key_env: the environment variable {p.api_key_env!r} is not set.",
                    hint=f"export {p.api_key_env}=... before running (the key never goes in a config).",
                )
        results: dict[str, dict | BaseException] = {}
        async with openai.AsyncOpenAI(base_url=p.base_url, api_key=api_key, max_retries=0) as client:

            async def one(key: str, request: dict) -> None:
                estimate = sum(len(m["content"]) for m in request["messages"]) / 4 + (p.max_tokens or 0)

                @asynccontextmanager
                async def slot() -> AsyncIterator[None]:
                    if self._rpm is not None:
                        await self._rpm.take(1)
                    if self._tpm is not None:
                        await self._tpm.take(estimate)
                    async with self._gate:
                        self._spend()  # inside the gate: the tokens of the requests before it are counted
                        call.counts["requests"] += 1
                        yield

                try:
                    reply = await complete(client, request, self.policy, slot)
                except (RequestFailed, BudgetSpent) as exc:
                    results[key] = exc
                    return
                used = reply["usage"]["prompt_tokens"] + reply["usage"]["completion_tokens"]
                call.counts["prompt_tokens"] += reply["usage"]["prompt_tokens"]
                call.counts["completion_tokens"] += reply["usage"]["completion_tokens"]
                with self._lock:
                    self._tokens_spent += used
                if self._tpm is not None and used:
                    self._tpm.settle(used - estimate)
                if conn is not None:
                    judge_cache.store(conn, key, p.model, reply)
                results[key] = reply

            await asyncio.gather(*(one(k, r) for k, r in missing.items()))
        return results

    def _spend(self) -> None:
        """Count one request against the budget, or raise BudgetSpent (saying so once)."""
        p = self.params
        with self._lock:
            sent, tokens = self._sent, self._tokens_spent
            over = (p.max_requests is not None and sent >= p.max_requests) or (
                p.max_total_tokens is not None and tokens >= p.max_total_tokens
            )
            if not over:
                self._sent += 1
                return
            say = not self._budget_said
            self._budget_said = True
        if say:
            warnings.warn(
                f"Reward {self.__name__!r}: the judge budget is spent ({sent} requests"
                f"{f' of max_requests {p.max_requests}' if p.max_requests is not None else ''}, {tokens} tokens"
                f"{f' of max_total_tokens {p.max_total_tokens}' if p.max_total_tokens is not None else ''}); "
                "no more requests are sent: rows not in the cache score None (reason 'budget spent').",
                RuntimeWarning,
                stacklevel=2,
            )
        raise BudgetSpent()

    def _scores(self, keys: list[str], replies: dict[str, dict | BaseException], call: CallUsage) -> list[float | None]:
        """Each row's score from its reply; failures follow on_error, unreadable replies are None."""
        out: list[float | None] = []
        failed: list[RequestFailed] = []
        for key in keys:
            reply = replies[key]
            if isinstance(reply, BudgetSpent):
                call.none_reasons["budget spent"] += 1
                out.append(None)
                continue
            if isinstance(reply, RequestFailed):
                failed.append(reply)
                call.counts["failures"] += 1
                if self.params.on_error == "none":
                    call.none_reasons[reply.reason] += 1
                out.append(None if self.params.on_error == "none" else 0.0)
                continue
            assert isinstance(reply, dict)
            if self.parser.logprobs:
                value = self.parser.expected([[(t, lp) for t, lp in pos] for pos in reply.get("positions") or []])
            else:
                value = self.parser.parse(str(reply.get("text", "")))
            if value is None or not math.isfinite(value):
                call.counts["unparsable"] += 1
                call.none_reasons["unparsable"] += 1
                value = None
            out.append(value)
        if failed:
            self.error_count += len(failed)
            why = Counter(f.reason for f in failed)
            if self.params.on_error == "raise":
                call.failed = RewardError(
                    f"Reward {self.__name__!r}: {len(failed)} judge requests failed after "
                    f"{self.params.max_retries} retries ({', '.join(f'{k}: {v}' for k, v in why.items())}); "
                    f"first: {failed[0].detail[:300]}.",
                    hint="check the server, raise max_retries / request_timeout, or set on_error: none | zero.",
                )
                raise call.failed
            warnings.warn(
                f"Reward {self.__name__!r}: {len(failed)} judge requests failed after {self.params.max_retries} "
                f"retries ({', '.join(f'{k}: {v}' for k, v in why.items())}); under on_error: "
                f"{self.params.on_error} they score {'None' if self.params.on_error == 'none' else '0.0'}.",
                RuntimeWarning,
                stacklevel=2,
            )
        return out


__all__ = ["FIXED_FIELDS", "Judge", "ScoreRange"]
