"""LLM-as-judge: a model behind any OpenAI-compatible chat-completions endpoint scores each completion by a rubric.

Requests go through the official `openai` async client (see `judge_client` for why and for the retry policy),
at most `max_concurrency` at once across the process, within `requests_per_minute` / `tokens_per_minute`;
replies are cached in SQLite (`judge_cache`), so the same request is never paid for twice. Every request, cache
hit and token is counted (`usage`, TRL's `log_metric`, `rewardkit score`).
"""

from __future__ import annotations

import json
import math
import threading
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pydantic import Field

from rewardkit.core.errors import ConfigError
from rewardkit.core.validation import Params, Seconds
from rewardkit.rewards import judge_cache
from rewardkit.rewards.base import TRAINER_KWARGS, Reward, RewardParams
from rewardkit.rewards.calls import Call
from rewardkit.rewards.inputs import Reference
from rewardkit.rewards.judge_client import BudgetSpent, RequestFailed, RetryPolicy
from rewardkit.rewards.judge_parse import ReplyParser
from rewardkit.rewards.judge_prompt import FIXED_FIELDS, check_fields, field_text, render, template_fields
from rewardkit.rewards.judge_requests import Limits, Sender
from rewardkit.rewards.judge_stand_in import stand_in_reply

_CALL = "_judge_call"  # the context key under which each ascore_batch of one call finds its JudgeCall
USAGE_KEYS = ("requests", "cache_hits", "prompt_tokens", "completion_tokens", "failures", "unparsable")


class ScoreRange(Params):
    """The judge's score scale."""

    min: float = Field(0.0, description="Lowest score the rubric gives (scaled to 0).")
    max: float = Field(10.0, description="Highest score the rubric gives (scaled to 1).")


@dataclass
class JudgeCall:
    """What one call of the reward learned: each request's outcome and its counts."""

    outcomes: dict[str, Any] = field(default_factory=dict)  # cache key -> reply dict | RequestFailed | BudgetSpent
    counts: Counter = field(default_factory=Counter)  # requests, cache_hits, tokens, failures, unparsable


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
    (counted as `unparsable` in `none_reasons`), never 0; a refusal (the reply's `refusal`, or a
    `content_filter` finish) scores None with the reason `refused`. Each None row's reason is also in
    `row_reasons`, which `rewardkit serve` sends per row (so a `remote` judge says the same).

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
        offline_stand_in (`bool`, defaults to False): what `rewardkit train --smoke` sets: nothing is sent or
            cached; each request gets a reply of the parser's shape chosen by a hash of the request
            (`judge_stand_in`), so a smoke run needs no judge server. Not a judgement: never set it for real.

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
        offline_stand_in: bool = Field(
            False, description="Set by --smoke: no request; a deterministic stand-in reply (not a judgement)."
        )

    def __init__(self, params: RewardParams | None = None, /, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        p = self.params
        self.parser = ReplyParser(
            score_range=(p.score.min, p.score.max) if p.score is not None else None,
            choices=p.choices,
            json_field=p.json_field,
            logprobs=p.logprobs,
        )
        if p.extra_body is not None:
            try:  # sent as JSON and part of the cache key: refuse what JSON cannot hold now, not at the first call
                json.dumps(p.extra_body, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"reward {self.__name__!r}: extra_body: is not JSON ({exc}).",
                    hint="give strings, numbers, booleans, lists and mappings only.",
                ) from exc
        self.templates = {"user_template": p.user_template}
        if p.system_template is not None:
            self.templates["system_template"] = p.system_template
        check_fields(f"reward {self.__name__!r}", self.templates, bool(p.reference), None)
        self.fields = list(dict.fromkeys(f for t in self.templates.values() for f in template_fields(t)))
        limits = Limits(
            base_url=p.base_url,
            api_key_env=p.api_key_env,
            max_concurrency=p.max_concurrency,
            requests_per_minute=p.requests_per_minute,
            tokens_per_minute=p.tokens_per_minute,
            max_requests=p.max_requests,
            max_total_tokens=p.max_total_tokens,
            max_tokens=p.max_tokens,
            policy=RetryPolicy(max_retries=p.max_retries, backoff=p.backoff, timeout=p.request_timeout),
        )
        self.sender = Sender(limits, f"Reward {self.__name__!r}")
        self.usage: Counter = Counter({k: 0 for k in USAGE_KEYS})  # totals of this process, over all calls
        self._usage_lock = threading.Lock()

    @property
    def needs_reference(self) -> bool:  # type: ignore[override]  # a class constant elsewhere; here a parameter
        """Whether a reference column is named: the base class then reads it (and skips rows without one)."""
        return bool(self.params.reference)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_usage_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._usage_lock = threading.Lock()

    @property
    def cache_path(self) -> Path:
        """The SQLite file replies are kept in."""
        p = self.params.cache_path
        return Path(p).expanduser() if p else judge_cache.default_cache_path()

    # --- one call: the base class prepares the rows and awaits ascore_batch ---------------------------
    def _prepare(self, prompts: Any, completions: Any, completion_ids: Any, kwargs: dict) -> Call:
        call = super()._prepare(prompts, completions, completion_ids, kwargs)
        call.context[_CALL] = JudgeCall()  # not a list: handed to every ascore_batch of this call as it is
        return call

    def _finish(self, call: Call, scores: Any) -> list[float | None]:
        out = super()._finish(call, scores)
        mine: JudgeCall = call.context[_CALL]
        # The base says "error" for a row whose request failed and "returned None" for an unread reply: each row
        # gets the judge's own reason instead, per row (what `rewardkit serve` sends), and the counts follow.
        for j, i in enumerate(call.rows):
            if out[i] is None and call.why.get(i) in ("error", "returned None"):
                call.why[i] = self._why(j, call, mine) or call.why[i]
        row_reasons = [call.why.get(i) if v is None else None for i, v in enumerate(out)]
        self.none_reasons = dict(Counter(r for r in row_reasons if r is not None))
        self.row_reasons = row_reasons
        if call.log_metric is not None:  # TRL logs these per step
            for key in USAGE_KEYS:
                call.log_metric(f"rewardkit/{self.__name__}/{key}", float(mine.counts.get(key, 0)))
        return out

    async def ascore_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        """Score the rows: this call's earlier outcomes, then the cache, then requests within the limits."""
        mine: JudgeCall = context.get(_CALL) or JudgeCall()
        columns = {k for k in context if k not in TRAINER_KWARGS and not k.startswith("_")}
        check_fields(f"reward {self.__name__!r}", self.templates, bool(self.params.reference), columns)
        requests = [self._request(i, completions, references, context) for i in range(len(completions))]
        keys = [judge_cache.cache_key(self._key_of(r)) for r in requests]
        # The base class scores a failed batch again row by row (to apply on_error to the right rows): those rows
        # are answered from this call's outcomes, without a second request.
        again = all(k in mine.outcomes for k in keys)
        if not again:
            counts: Counter = Counter()
            try:
                await self._fetch(keys, requests, mine, counts)
            finally:  # counted even when the call fails or is cancelled: the requests were sent
                mine.counts.update(counts)
                with self._usage_lock:
                    self.usage.update(counts)
        return self._scores(
            keys, mine, final=again or not any(isinstance(mine.outcomes[k], RequestFailed) for k in keys)
        )

    async def _fetch(self, keys: list[str], requests: list[dict], mine: JudgeCall, counts: Counter) -> None:
        """Outcomes of the rows' requests into `mine.outcomes`: from the cache, else sent."""
        if self.params.offline_stand_in:  # --smoke: no server, no cache (a stand-in reply must never be reused)
            mine.outcomes.update({k: stand_in_reply(self.parser, r) for k, r in zip(keys, requests)})
            return
        conn = judge_cache.connect(self.cache_path) if self.params.cache else None
        try:
            todo = {k: r for k, r in zip(keys, requests) if k not in mine.outcomes}
            if conn is not None:
                found = judge_cache.lookup(conn, todo)
                mine.outcomes.update(found)
                todo = {k: r for k, r in todo.items() if k not in found}
            # A row answered without a request of its own: from the cache, or by an identical row of this call.
            counts["cache_hits"] += len(keys) - len(todo)
            if todo:
                mine.outcomes.update(await self.sender.fetch_all(todo, conn, self.params.model, counts))
            if conn is not None:
                judge_cache.add_counts(
                    conn, {"hits": counts["cache_hits"], **{k: counts[k] for k in judge_cache.COUNTERS if k != "hits"}}
                )
        finally:
            if conn is not None:
                conn.close()

    def _request(self, i: int, completions: list[str], references: list[Reference] | None, context: dict) -> dict:
        """The chat-completions keywords for row i."""
        values: dict[str, str] = {}
        for name in self.fields:
            if name == "completion":
                values[name] = completions[i]
                continue
            source = {"reference": references, "prompt": context.get("prompts")}.get(name, context.get(name))
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

    def _why(self, j: int, call: Call, mine: JudgeCall) -> str | None:
        """Why scored row j of `call` is None, from its request's outcome (None: no outcome of this call)."""
        try:
            request = self._request(j, call.texts, call.refs, call.context)
        except Exception:  # a row whose request could not even be made failed the call before scoring
            return None
        outcome = mine.outcomes.get(judge_cache.cache_key(self._key_of(request)))
        if isinstance(outcome, RequestFailed):
            return outcome.reason
        if isinstance(outcome, BudgetSpent):
            return "budget spent"
        if isinstance(outcome, dict):
            return "refused" if outcome.get("refusal") else "unparsable"
        return None

    def _key_of(self, request: dict) -> dict:
        return {"endpoint": self.params.base_url.rstrip("/"), "request": request, "parser": self.parser.describe()}

    def _scores(self, keys: list[str], mine: JudgeCall, final: bool) -> list[float | None]:
        """Each row's score from its outcome. A failed request raises (the base class then applies on_error row by
        row); the reasons are counted once, on the pass whose scores the call keeps (`final`)."""
        out: list[float | None] = []
        failed: list[RequestFailed] = []
        for key in keys:
            outcome = mine.outcomes[key]
            if isinstance(outcome, RequestFailed):
                failed.append(outcome)
                out.append(None)
                continue
            if isinstance(outcome, BudgetSpent):
                value = None
            else:
                assert isinstance(outcome, dict)
                value = self._value(outcome)
                if value is None and final and not outcome.get("refusal"):  # a refusal is said as such
                    mine.counts["unparsable"] += 1
                    with self._usage_lock:
                        self.usage["unparsable"] += 1
            out.append(value)
        if failed:
            if final:  # one row, scored again by the base class: on_error decides what it scores
                mine.counts["failures"] += 1
                with self._usage_lock:
                    self.usage["failures"] += 1
            elif self.params.on_error != "raise":
                why = Counter(f.reason for f in failed)
                warnings.warn(
                    f"Reward {self.__name__!r}: {len(failed)} judge requests failed after "
                    f"{self.params.max_retries} retries ({', '.join(f'{k}: {v}' for k, v in why.items())}); under "
                    f"on_error: {self.params.on_error} they score {'None' if self.params.on_error == 'none' else '0.0'}.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            raise failed[0]
        return out

    def _value(self, reply: dict) -> float | None:
        """The score of one reply (None: unreadable)."""
        if self.parser.logprobs:
            value = self.parser.expected([[(t, lp) for t, lp in pos] for pos in reply.get("positions") or []])
        else:
            value = self.parser.parse(str(reply.get("text", "")))
        return value if value is not None and math.isfinite(value) else None


__all__ = ["FIXED_FIELDS", "Judge", "ScoreRange"]
