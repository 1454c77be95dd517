"""The `remote` reward: a compose spec scored by `rewardkit serve` servers, on this machine or others."""

from __future__ import annotations

import json
import math
import os
import threading
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from rewardkit.core.errors import ConfigError, DataError, RewardError
from rewardkit.core.validation import Seconds
from rewardkit.rewards.base import TRAINER_KWARGS, Reference, Reward, RewardParams
from rewardkit.rewards.calls import Call, RowNote
from rewardkit.rewards.remote_client import Policy, Refused, ServerFailed, Servers, json_scalar, score_rows

_SERVERS = threading.Lock()  # two threads making a reward's Servers at once must make one
_ITEMS = "_remote_items"  # keyword under which __call__ hands the completions as sent (chat messages) on


class Remote(Reward):
    """The combined score of a compose spec served by `rewardkit serve` at one or more URLs.

    The rows go to the servers' `POST /score` as they are: completions as sent (text or chat messages), prompts,
    and every dataset column; each server scores them with its spec (so its reference columns, views and
    None policies apply there) and this reward returns each row's combined score. A batch is split into one
    share per URL and sent concurrently (requests of at most `max_rows` rows). A request is retried on a
    connection error, a timeout, a 5xx or a 429 (Retry-After honoured, else exponential backoff); a server whose
    retries run out is set aside for 30 s, logged once (logger `rewardkit.remote`), and its share goes to the
    others. No number is ever made up: when no server can score a share, `on_error` applies to the batch
    (`raise`, the default: an error naming the URL and the cause; `none` / `zero`: the rows score None / 0.0).
    A 4xx answer (a missing column, a bad value, a wrong token) is never retried and is raised as an input error.

    Args:
        url (`str | list[str]`): server base URLs, e.g. `["http://10.0.0.1:8000", "http://10.0.0.2:8000"]`.
        timeout (`float`, defaults to `30`): seconds one request may take (connect, send, score, answer).
        retries (`int`, defaults to `3`): tries after the first, per request.
        backoff (`float`, defaults to `0.5`): seconds before the first retry, doubled at each retry.
        max_rows (`int`, defaults to `1024`): rows per request (a server refuses more than its `--max-rows`).
        token_env (`str`, *optional*): environment variable holding the servers' bearer token (`--token-env`).

    Example:
    >>> from rewardkit import get_reward
    >>> reward = get_reward("remote", url=["http://127.0.0.1:8000"], timeout=10)
    >>> reward(completions=["4"], answer=["4"])  # doctest: +SKIP
    [1.0]
    """

    name = "remote"
    row_fallback: ClassVar[bool] = False  # servers down: on_error for the batch, not one retry round per row

    class Params(RewardParams):
        url: list[str] = Field(min_length=1, max_length=256, description="Server base URLs (rewardkit serve).")
        timeout: Seconds = Field(30.0, description="Seconds one HTTP request may take.")
        retries: int = Field(3, ge=0, le=20, description="Retries per request after the first try.")
        backoff: float = Field(0.5, ge=0, le=60, description="Seconds before the first retry, doubled each time.")
        max_rows: int = Field(1024, ge=1, le=1_000_000, description="Rows per request.")
        token_env: str | None = Field(None, min_length=1, description="Environment variable holding the token.")

        @field_validator("url", mode="before")
        @classmethod
        def _one_or_many(cls, value: Any) -> Any:
            return [value] if isinstance(value, str) else value

        @field_validator("url")
        @classmethod
        def _http(cls, urls: list[str]) -> list[str]:
            out = []
            for url in urls:
                parts = urlsplit(url)
                if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
                    raise ValueError(f"{url!r} is not a server base URL like http://host:8000")
                try:
                    parts.port  # noqa: B018 - raises on a port that is not a number
                except ValueError:
                    raise ValueError(f"{url!r} has a bad port") from None
                out.append(url.rstrip("/"))
            if len(set(out)) != len(out):
                raise ValueError("a URL is listed twice")
            return out

    def __init__(self, params: RewardParams | None = None, /, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        p = self.params
        for name in ("reference", "completion_view", "reference_view"):
            if getattr(p, name) is not None:
                raise ConfigError(
                    f"reward {self.name!r}: parameter {name!r} is not supported: the served spec reads the columns "
                    "and applies its own views.",
                    hint=f"remove {name} (set it in the served spec).",
                )
        self.token()  # an unset variable stops here, not at the first batch
        self._servers: Servers | None = None

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_servers"] = None  # holds a lock; a new process starts with every server up
        return state

    def call_budget(self) -> float | None:
        """None: `timeout` bounds each HTTP request here, not the whole call (a failover may take several)."""
        return None

    def token(self) -> str | None:
        """The bearer token from `token_env` (read at each call, never stored in the spec or the repr)."""
        name = self.params.token_env
        if name is None:
            return None
        token = os.environ.get(name, "").strip()
        if not token:
            raise ConfigError(
                f"reward {self.__name__!r}: token_env: the environment variable {name} is not set or empty.",
                hint=f"export {name}=<the token the servers were started with>.",
            )
        return token

    def servers(self) -> Servers:
        """Which URLs are up, shared by every call of this reward."""
        with _SERVERS:
            if self._servers is None:
                self._servers = Servers(list(self.params.url))
            return self._servers

    def _prepare(self, prompts: Any, completions: Any, completion_ids: Any, kwargs: dict) -> Call:
        if isinstance(completions, (list, tuple)):
            kwargs[_ITEMS] = list(completions)  # the server gets chat messages as messages, not their text
        return super()._prepare(prompts, completions, completion_ids, kwargs)

    def _payload(self, completions: list[str], context: dict[str, Any]) -> dict:
        items = context.get(_ITEMS) or completions
        columns = {k: v for k, v in context.items() if k not in TRAINER_KWARGS and k != _ITEMS}
        for key, value in columns.items():
            if not isinstance(value, list) or len(value) != len(completions):
                raise DataError(
                    f"Reward {self.__name__!r}: column {key!r} is not one value per completion; only per-row "
                    "columns can be sent to a server.",
                    hint="pass columns as lists, one item per completion (as TRL does).",
                )
        payload = {"completions": list(items), "prompts": context.get("prompts"), "columns": columns}
        try:  # checked here, so a column that JSON cannot carry is named before anything is sent
            json.dumps(payload, default=json_scalar, allow_nan=False)
        except (TypeError, ValueError) as exc:
            bad = next((k for k, v in columns.items() if not _dumps_ok(v)), "completions or prompts")
            raise DataError(
                f"Reward {self.__name__!r}: column {bad!r} cannot be sent as JSON ({exc}).",
                hint="send strings, numbers, lists and objects (None for a missing value, not NaN).",
            ) from None
        return payload

    async def ascore_batch(  # type: ignore[override]  # None rows come as RowNote (the servers' reasons)
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | RowNote]:
        """Each row's combined score from the servers (a retry, a failover; else ServerFailed -> on_error)."""
        payload = self._payload(completions, context)
        p = self.params
        policy = Policy(
            timeout=p.timeout, retries=p.retries, backoff=p.backoff, max_rows=p.max_rows, token=self.token()
        )
        try:
            rows = await score_rows(self.servers(), payload, policy)
        except Refused as exc:
            if exc.status < 400:  # an answer that is not rewardkit's: the server is wrong, not the rows
                raise RewardError(
                    f"Reward {self.__name__!r}: {exc}.", hint="check that the URL is a rewardkit serve."
                ) from None
            kind = ConfigError if exc.status in (401, 403, 404, 405, 413) else DataError
            raise kind(
                f"Reward {self.__name__!r}: {exc}.",
                hint="fix the field it names (422), the token (401), max_rows (413) or the URL (404).",
            ) from None
        except ServerFailed as exc:
            raise RewardError(
                f"Reward {self.__name__!r}: no server could score the rows; {exc.url}: {exc.cause}.",
                hint="start the servers (rewardkit serve SPEC), or set on_error: none | zero.",
            ) from None
        scores = [_score(row["score"]) for row in rows]
        # a None row carries the server's reason ("remote: em: no reference"), counted in none_reasons
        return [RowNote(None, _reason(row)) if s is None else s for s, row in zip(scores, rows)]


def _dumps_ok(value: Any) -> bool:
    try:
        json.dumps(value, default=json_scalar, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _reason(row: dict) -> str:
    """One None row's reason as the server gave it: each None component and why."""
    why = row.get("none")
    if not isinstance(why, dict) or not why:
        return "remote: returned None"
    return "remote: " + ", ".join(f"{alias}: {reason}" for alias, reason in why.items())


def _score(value: Any) -> float | None:
    """A server's score, as the server sent it: a finite number or None (anything else is not a score)."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
        return None if value is None else float(value)
    raise RewardError(f"remote: a server sent {value!r:.40} as a score.", hint="check the servers' version.")
