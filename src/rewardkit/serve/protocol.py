"""The two request shapes `rewardkit serve` answers, checked before anything is scored, and their answers.

`POST /score` (rewardkit's protocol)::

    {"completions": [str | chat messages, ...], "prompts": [...] (optional),
     "columns": {"<column>": [one value per completion], ...} (optional)}
    -> {"combine": "<expression>",
        "rows": [{"score": float | null, "components": {"<alias>": float | null}, "none": {"<alias>": "<why>"}}]}

`POST /get_reward` (OpenRLHF's remote reward protocol, unchanged)::

    {"query": [prompt + response, ...], "prompts": [prompt, ...], "labels": [gold, ...]}
    -> {"rewards": [float | null], "scores": [float | null], "extra_logs": {"<alias>": [float | null]}}

Every problem is a `RequestError`: an HTTP status and one JSON error naming the field
(`{"error": {"field": "completions[3]", "message": "..."}}`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rewardkit.core.errors import DataError
from rewardkit.rewards.inputs import completion_text, reference_item

SCORE_KEYS = frozenset({"completions", "prompts", "columns"})
REWARD_KEYS = frozenset({"query", "prompts", "labels"})
RESERVED_COLUMNS = frozenset({"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric"})


class RequestError(Exception):
    """A request rewardkit refuses: the HTTP status, the field at fault and what is wrong with it."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message

    def body(self) -> dict:
        """The one JSON error the client gets."""
        return {"error": {"field": self.field, "message": self.message}}


@dataclass(frozen=True)
class Limits:
    """How much one request may carry."""

    max_rows: int = 4096
    max_body_bytes: int = 32 * 1024 * 1024


@dataclass
class ScoreRequest:
    """Rows to score: completions as sent (text or chat), prompts, and per-row columns (references...)."""

    completions: list
    prompts: list | None = None
    columns: dict[str, list] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        """The keyword call a reward gets, as TRL makes it."""
        return {"prompts": self.prompts, "completions": self.completions, **self.columns}


@dataclass
class Scored:
    """Per row: each component's score, the combined score, and why a component scored None."""

    components: dict[str, list[float | None]]
    combined: list[float | None]
    reasons: dict[str, list[str | None]]


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    """The body as JSON (strict: NaN and Infinity are not JSON)."""
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise RequestError(400, "body", f"the body is not UTF-8 ({exc.reason} at byte {exc.start}).") from None
    except json.JSONDecodeError as exc:
        raise RequestError(400, "body", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
    except ValueError as exc:
        raise RequestError(400, "body", f"{exc}.") from None
    except RecursionError:
        raise RequestError(400, "body", "the JSON is nested too deeply.") from None


def _object(body: Any, allowed: frozenset[str], route: str) -> dict:
    if not isinstance(body, dict):
        raise RequestError(400, "body", f"{route} takes a JSON object, got {_json_type(body)}.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RequestError(
            400, unknown[0], f"{route} takes the fields {', '.join(sorted(allowed))}; {unknown[0]!r} is not one."
        )
    return body


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _list(body: dict, name: str, n: int | None, limits: Limits) -> list:
    value = body[name]
    if not isinstance(value, list):
        raise RequestError(400, name, f"must be an array (one item per row), got {_json_type(value)}.")
    if len(value) > limits.max_rows:
        raise RequestError(413, name, f"{len(value)} rows is over this server's limit of {limits.max_rows} a request.")
    if n is not None and len(value) != n:
        raise RequestError(422, name, f"has {len(value)} items for {n} rows (one item per row).")
    return value


def _texts(items: list, name: str) -> None:
    for i, item in enumerate(items):
        try:
            completion_text(item, i, name)
        except DataError as exc:
            raise RequestError(422, f"{name}[{i}]", str(exc)) from None


def _check_golds(values: list, column: str, field: str) -> None:
    for i, value in enumerate(values):
        try:
            reference_item(value, i, column)
        except DataError as exc:
            raise RequestError(422, f"{field}[{i}]", str(exc)) from None


def check_references(request: ScoreRequest, reference_columns: list[str]) -> None:
    """Every reference column the spec reads is present and each value is a usable gold (else 422)."""
    for column in reference_columns:
        if column not in request.columns:
            sent = ", ".join(sorted(request.columns)) or "none"
            raise RequestError(
                422, f"columns.{column}", f"the spec reads the reference column {column!r}; columns sent: {sent}."
            )
        _check_golds(request.columns[column], column, f"columns.{column}")


def score_request(body: Any, limits: Limits, reference_columns: list[str]) -> ScoreRequest:
    """A `/score` body, checked: types, lengths, row limit, texts and the spec's reference columns."""
    body = _object(body, SCORE_KEYS, "/score")
    if "completions" not in body:
        raise RequestError(400, "completions", "is required: one completion (text or chat messages) per row.")
    completions = _list(body, "completions", None, limits)
    n = len(completions)
    _texts(completions, "completions")
    prompts = None
    if body.get("prompts") is not None:
        prompts = _list(body, "prompts", n, limits)
    columns = body.get("columns") or {}
    if not isinstance(columns, dict):
        raise RequestError(400, "columns", f"must be an object of column -> array, got {_json_type(columns)}.")
    for name in columns:
        if name in RESERVED_COLUMNS:
            raise RequestError(
                400, f"columns.{name}", f"{name!r} is not a column name (send it as a field of its own)."
            )
        _list(columns, name, n, limits)
    request = ScoreRequest(completions, prompts, dict(columns))
    check_references(request, reference_columns)
    return request


def reward_request(body: Any, limits: Limits, reference_columns: list[str]) -> ScoreRequest:
    """An OpenRLHF `/get_reward` body as rows: the response is the query after its prompt, labels the reference."""
    body = _object(body, REWARD_KEYS, "/get_reward")
    if "query" not in body:
        raise RequestError(400, "query", "is required: one prompt + response text per row.")
    queries = _list(body, "query", None, limits)
    n = len(queries)
    if body.get("prompts") is None:
        raise RequestError(400, "prompts", "is required: the prompt each query starts with, to find the response.")
    prompts = _list(body, "prompts", n, limits)
    responses = []
    for i, (query, prompt) in enumerate(zip(queries, prompts)):
        if not isinstance(query, str):
            raise RequestError(422, f"query[{i}]", f"must be a string, got {_json_type(query)}.")
        if not isinstance(prompt, str):
            raise RequestError(422, f"prompts[{i}]", f"must be a string, got {_json_type(prompt)}.")
        if not query.startswith(prompt):
            raise RequestError(
                422,
                f"query[{i}]",
                f"does not start with prompts[{i}], so the response cannot be cut from it (query starts "
                f"{query[:40]!r}, prompt starts {prompt[:40]!r}).",
            )
        responses.append(query[len(prompt) :])
    columns: dict[str, list] = {}
    if len(reference_columns) > 1:
        raise RequestError(
            422,
            "labels",
            f"the served spec reads {len(reference_columns)} reference columns ({', '.join(reference_columns)}); "
            "labels fill only one: serve a spec with one reference column, or use /score with columns.",
        )
    if reference_columns:  # without one (e.g. a reward model alone) the labels are not read
        if body.get("labels") is None:
            raise RequestError(
                400, "labels", f"is required: the served spec compares with a gold (column {reference_columns[0]!r})."
            )
        columns[reference_columns[0]] = _list(body, "labels", n, limits)
        _check_golds(columns[reference_columns[0]], reference_columns[0], "labels")
    elif body.get("labels") is not None:
        _list(body, "labels", n, limits)
    return ScoreRequest(responses, prompts, columns)


def score_answer(scored: Scored, expression: str) -> dict:
    """The `/score` answer: one object per row."""
    aliases = list(scored.components)
    rows = []
    for i, combined in enumerate(scored.combined):
        reasons = {a: scored.reasons[a][i] for a in aliases if scored.components[a][i] is None}
        rows.append(
            {
                "score": combined,
                "components": {a: scored.components[a][i] for a in aliases},
                "none": {a: why or "returned None" for a, why in reasons.items()},
            }
        )
    return {"combine": expression, "rows": rows}


def reward_answer(scored: Scored) -> dict:
    """The `/get_reward` answer OpenRLHF reads (`scores`, else `rewards`; `extra_logs` per component)."""
    return {"rewards": scored.combined, "scores": scored.combined, "extra_logs": dict(scored.components)}
