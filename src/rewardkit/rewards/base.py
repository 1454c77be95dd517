"""The reward contract: a picklable callable class that TRL's GRPOTrainer calls by keyword.

Subclasses set `name`, a pydantic `Params` model (extending RewardParams), `needs_reference`, and implement
`score(completion, reference)` or, for batched work, `score_batch(completions, references, **context)`.
The builder validates the parameters once and hands the `Params` instance to the constructor (see
`validation.Configured`); a subclass overriding `__init__` keeps `(self, params=None, /, **kwargs)`.
The base class handles str vs chat completions, the reference column, views, None, errors and time budgets.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
import warnings
from typing import Any, ClassVar, Literal, Optional

from pydantic import Field

from rewardkit.core.aio import run_sync
from rewardkit.core.errors import ConfigError, DataError, RewardError
from rewardkit.core.validation import Configured, Params, Seconds, ViewSpec
from rewardkit.rewards.calls import Call, RowNote, take_notes, warn_late
from rewardkit.rewards.inputs import Reference, completion_text, reference_item
from rewardkit.rewards.on_error import batch_failed, one_row, row_outcome
from rewardkit.rewards.scores import as_score  # also imported from here (composition)
from rewardkit.rewards.worker_scoring import score_in_workers

# Keyword arguments TRL passes that are never dataset columns.
TRAINER_KWARGS = frozenset(
    {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
)


class RewardParams(Params):
    """Parameters every reward accepts."""

    reference: str | None = Field(None, description="Dataset column holding the reference (gold) text.")
    completion_view: ViewSpec = Field(None, description="Part of the completion to score (e.g. 'boxed').")
    reference_view: ViewSpec = Field(None, description="Part of the reference to compare with.")
    missing: Literal["zero", "none"] = Field(
        "zero", description="Score when the completion view finds nothing: 0.0, or None (not applicable)."
    )
    on_error: Literal["raise", "none", "zero"] = Field(
        "raise", description="What a row scores when the reward raises on it (raise = stop with the row index)."
    )
    timeout: Optional[Seconds] = Field(
        None,
        description="Seconds one call (with workers: one chunk) may take; on expiry its rows are None (a sync reward "
        "runs in a worker process for it).",
    )
    workers: Optional[int] = Field(
        None,
        ge=1,
        le=256,
        description="Score each batch split across this many worker processes (sync CPU-bound rewards); "
        "default: in process.",
    )
    name: str | None = Field(
        None, min_length=1, description="Name TRL logs (rewards/<name>/mean); defaults to the reward name."
    )


def reference_options(reference: Reference, alternatives: str | None = None) -> list[str]:
    """Every gold text of one row: the list items (or the single string), each split at `alternatives`.

    >>> reference_options(["Paris#Paname", "Lutetia"], "#")
    ['Paris', 'Paname', 'Lutetia']
    """
    golds = reference if isinstance(reference, list) else [reference]
    return [alt for gold in golds if gold is not None for alt in (gold.split(alternatives) if alternatives else [gold])]


_COUNTS = threading.Lock()  # error_count / timeout_count are updated by calls from any thread


class Reward(Configured):
    """Base of all rewards (see module docstring)."""

    name: ClassVar[str] = "reward"
    kind: ClassVar[str] = "reward"
    Params: ClassVar[type[RewardParams]] = RewardParams
    needs_reference: ClassVar[bool] = False
    # True: `timeout:` / `workers:` are the reward's own (a deadline per item), not a budget for a whole call.
    own_workers: ClassVar[bool] = False
    # On a failing batch, find the failing rows by scoring them one by one; False: on_error applies to the
    # whole batch at once (a remote reward whose servers are down would otherwise be retried once per row).
    row_fallback: ClassVar[bool] = True
    params: Any  # the validated Params instance of the subclass

    def __init__(self, params: RewardParams | None = None, /, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        if self.needs_reference and not self.params.reference:
            raise ConfigError(
                f"reward {self.name!r}: reference: must name the dataset column holding the gold text.",
                hint="reference='answer'.",
            )
        self.__name__ = self.params.name or self.name
        if self.params.workers is not None and self.is_async:
            raise ConfigError(
                f"reward {self.__name__!r}: workers: splits a batch over processes for sync CPU-bound rewards; "
                "this reward is async (it already scores concurrently).",
                hint="remove workers:.",
            )
        self._completion_view = self.params.completion_view
        self._reference_view = self.params.reference_view
        self._wire: bytes | None = None  # this reward pickled for worker processes (see worker_scoring)
        self._pool: Any = None  # its worker processes (timeout:, workers:), started on first use; never pickled
        self._token = uuid.uuid4().hex  # names this reward's worker pool and its copy in the workers
        self.error_count = 0  # rows scored by on_error, over all calls
        self.timeout_count = 0  # calls that ran out of time, over all calls
        self.none_reasons: dict[str, int] = {}  # why rows of the last call that finished scored None
        self.row_reasons: list[str | None] = []  # the same per completion of that call (None: not None)
        # Of the last call's rows with a reference, how many the completion view found its part in (None: no view).
        self.view_coverage: dict[str, Any] | None = None

    def __repr__(self) -> str:
        changed = self.params.model_dump(exclude_defaults=True)
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_wire"] = state["_pool"] = None  # rebuilt from the copy when needed; processes do not travel
        return state

    # --- what subclasses implement -------------------------------------------------------------
    def score(self, completion: str, reference: Reference) -> float | None:
        """Score one completion (views applied) against its reference (None when not needed)."""
        raise NotImplementedError(f"{type(self).__name__} must implement score() or score_batch()")

    def score_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        """Score many rows; the default calls `score` row by row."""
        refs = references if references is not None else [None] * len(completions)
        return [self.score(c, r) for c, r in zip(completions, refs)]

    def merges_calls(self) -> bool:
        """Whether a server may merge concurrent calls into one: each row scores the same whatever rows share the
        call (up to float rounding of a batched forward pass), and one call on many rows is cheaper than many
        calls (a model). `rewardkit serve` batches such components across requests."""
        return False

    def call_budget(self) -> float | None:
        """Seconds an async call may take (`timeout`); a reward whose `timeout` bounds something else returns None."""
        return self.params.timeout

    # --- the TRL call ----------------------------------------------------------------------------
    @property
    def is_async(self) -> bool:
        """Whether this reward scores with `ascore_batch` (then `acall` awaits it; `__call__` runs it to the end)."""
        return type(self).ascore_batch is not Reward.ascore_batch

    async def ascore_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        """Score many rows asynchronously: implement this instead of `score_batch` for I/O-bound rewards."""
        raise NotImplementedError(f"{type(self).__name__} does not implement ascore_batch()")

    def __call__(
        self,
        prompts: list | None = None,
        completions: list | None = None,
        completion_ids: list | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        call = self._prepare(prompts, completions, completion_ids, kwargs)
        if not call.texts:
            return self._finish(call, [])
        scores = run_sync(self._arun(call)) if self.is_async else self._run(call)
        return self._finish(call, scores)

    async def acall(
        self,
        prompts: list | None = None,
        completions: list | None = None,
        completion_ids: list | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        """`__call__` to await: the same checks, views, None reasons and policies; a sync reward runs in a thread."""
        if not self.is_async:  # through __call__, so a subclass's own __call__ applies too
            return await asyncio.to_thread(
                self.__call__, prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs
            )
        call = self._prepare(prompts, completions, completion_ids, kwargs)
        return self._finish(call, await self._arun(call) if call.texts else [])

    def _prepare(self, prompts: Any, completions: Any, completion_ids: Any, kwargs: dict) -> Call:
        """Check TRL's arguments, apply views and references: which rows are scored, with what context."""
        if completions is None:
            raise DataError(
                f"Reward {self.__name__!r} was called without completions=.",
                hint="call it as TRL does: reward(prompts=..., completions=..., <reference column>=...).",
            )
        if not isinstance(completions, (list, tuple)):
            raise DataError(
                f"Reward {self.__name__!r}: completions must be a list (one item per completion), got "
                f"{type(completions).__name__}.",
                hint="completions=['text'] scores one completion.",
            )
        n = len(completions)
        for field, value in (("prompts", prompts), ("completion_ids", completion_ids)):
            if value is not None and (not isinstance(value, (list, tuple)) or len(value) != n):
                got = (
                    f"has {len(value)} items"
                    if isinstance(value, (list, tuple))
                    else f"is {type(value).__name__}, not a list,"
                )
                raise DataError(
                    f"Reward {self.__name__!r}: {field} {got} for {n} completions.",
                    hint="pass one "
                    f"item per completion (a list of {'token ids' if field == 'completion_ids' else 'prompts'}"
                    " each), as TRL does.",
                )
        texts = [completion_text(c, i) for i, c in enumerate(completions)]
        references = self._references(n, kwargs) if self.needs_reference else None
        call = Call(out=[None] * n, refs=[] if references is not None else None, log_metric=kwargs.get("log_metric"))
        for i, text in enumerate(texts):
            if references is not None:
                ref = self._view_reference(references[i])
                if ref is None:
                    call.reasons["no reference"] += 1
                    call.why[i] = "no reference"
                    continue  # nothing to compare with: not applicable
            part = self._completion_view(text) if self._completion_view else text
            call.applicable += 1
            call.found += part is not None
            if part is None:
                call.out[i] = 0.0 if self.params.missing == "zero" else None
                call.reasons["view missed"] += call.out[i] is None
                if call.out[i] is None:
                    call.why[i] = "view missed"
                continue
            call.rows.append(i)
            call.texts.append(part)
            if call.refs is not None:
                call.refs.append(ref)
        context = {"prompts": prompts, "completion_ids": completion_ids, **kwargs}
        # Per-row columns (lists or tuples) follow the rows that are scored, as lists
        call.context = {
            k: ([v[i] for i in call.rows] if isinstance(v, (list, tuple)) and len(v) == n else v)
            for k, v in context.items()
            if k not in ("log_metric", "log_extra")
        }
        return call

    def _finish(self, call: Call, scores: Any) -> list[float | None]:
        """Check the scores, put them in their rows, count and publish why rows are None."""
        if not isinstance(scores, (list, tuple)) or len(scores) != len(call.texts):
            got = len(scores) if isinstance(scores, (list, tuple)) else type(scores).__name__
            raise RewardError(f"Reward {self.__name__!r} returned {got} scores for {len(call.texts)} completions.")
        said = [s.reason if isinstance(s, RowNote) and s.value is None else None for s in scores]
        values, noted, late, late_score = take_notes(call, list(scores))
        checked = self._after_scoring([as_score(s, self.__name__, call.rows[i]) for i, s in enumerate(values)])
        for i, s, why in zip(call.rows, checked, said):
            call.out[i] = s
            if s is None:
                call.why.setdefault(i, why or "returned None")
        reasons = call.reasons
        reasons["error"] = call.errors if self.params.on_error == "none" else 0
        reasons["timeout"] = reasons.get("timeout", 0) + call.timeouts  # whole calls, and items noted None
        reasons["returned None"] = sum(s is None for s in checked) - reasons["error"] - call.timeouts - noted
        with _COUNTS:
            self.error_count += call.errors
            self.timeout_count += (call.timeouts > 0) + late
            errors, timeouts = self.error_count, self.timeout_count
        if late:  # items past their own deadline (a reward with own_workers)
            warn_late(self.__name__, late, len(call.rows), self.params.timeout, late_score)
        if call.log_metric is not None:
            if call.errors:
                call.log_metric(f"rewardkit/{self.__name__}/errors", float(errors))
            if call.timeouts or late:
                call.log_metric(f"rewardkit/{self.__name__}/timeouts", float(timeouts))
        # One new dict per call, never updated in place: a reader sees one whole call's reasons.
        self.none_reasons = {k: v for k, v in reasons.items() if v > 0}
        self.row_reasons = [call.why.get(i) if s is None else None for i, s in enumerate(call.out)]
        view = self._completion_view
        self.view_coverage = (
            None
            if view is None
            else {
                "view": getattr(view, "name", type(view).__name__),
                "found": call.found,
                "rows": call.applicable,
                "missing": self.params.missing,
            }
        )
        return call.out

    def _after_scoring(self, scores: list[float | None]) -> list[float | None]:
        """The checked scores of one call's scored rows, transformed (a subclass may override; default as is)."""
        return scores

    def _references(self, n: int, kwargs: dict) -> list[Reference]:
        column = self.params.reference
        if column not in kwargs:
            columns = sorted(k for k in kwargs if k not in TRAINER_KWARGS)
            raise DataError(
                f"Reward {self.__name__!r} needs the reference column {column!r}, but the columns "
                f"passed were: {', '.join(columns) or '(none)'}.",
                hint="set reference='<column>' or add the column to the dataset.",
            )
        values = kwargs[column]
        if not isinstance(values, (list, tuple)) or len(values) != n:
            got = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
            raise DataError(
                f"Reward {self.__name__!r}: column {column!r} has {got} values for {n} completions.",
                hint="pass one reference per completion (TRL repeats columns per generation).",
            )
        return [reference_item(v, i, column) for i, v in enumerate(values)]

    def _view_reference(self, ref: Reference) -> Reference:
        if ref is None or self._reference_view is None:
            return ref
        if isinstance(ref, list):
            parts = [p for p in (self._reference_view(r) for r in ref) if p is not None]
            return parts or None
        return self._reference_view(ref)

    # --- scoring the prepared rows -----------------------------------------------------------------
    def _run(self, call: Call) -> list:
        """Scores of `call`'s rows from `score_batch`: in process, or in worker processes (timeout, workers)."""
        if not self.own_workers and (self.params.timeout is not None or self.params.workers is not None):
            return score_in_workers(self, call)
        try:
            return self.score_batch(call.texts, call.refs, **call.context)
        except (DataError, ConfigError):
            raise  # the input or the setup is wrong: no row-level policy applies
        except (Exception, SystemExit) as exc:  # sys.exit() in a reward is a failing reward, not the end of training
            if not self.row_fallback:
                return batch_failed(self.__name__, self.params.on_error, call, exc)
            return self.rows_one_by_one(call)

    async def _arun(self, call: Call) -> list:
        """Scores of `call`'s rows from `ascore_batch`, within `timeout`."""
        try:
            return await asyncio.wait_for(self._ascore_or_rows(call), self.call_budget())
        except asyncio.TimeoutError:
            warnings.warn(
                f"Reward {self.__name__!r} exceeded its {self.call_budget()}s budget on "
                f"{len(call.texts)} completions; they score None.",
                RuntimeWarning,
                stacklevel=2,
            )
            call.timeouts = len(call.texts)
            call.why.update(dict.fromkeys(call.rows, "timeout"))
            return [None] * len(call.texts)

    async def _ascore_or_rows(self, call: Call) -> list:
        try:
            return await self.ascore_batch(call.texts, call.refs, **call.context)
        except (DataError, ConfigError):
            raise
        except (Exception, SystemExit) as exc:
            if not self.row_fallback:
                return batch_failed(self.__name__, self.params.on_error, call, exc)
            rows = [one_row(call, j) for j in range(len(call.texts))]
            outcomes = await asyncio.gather(
                *(self.ascore_batch(texts, refs, **ctx) for texts, refs, ctx in rows), return_exceptions=True
            )
            name, policy = self.__name__, self.params.on_error
            return [
                row_outcome(name, policy, call, j, got if isinstance(got, BaseException) else None, got)
                for j, got in enumerate(outcomes)
            ]

    def rows_one_by_one(self, call: Call) -> list[float | None]:
        """Score row by row to find the failing rows and apply on_error to them (counted in `call.errors`)."""
        scores: list = []
        name, policy = self.__name__, self.params.on_error
        for j, (texts, refs, ctx) in enumerate(one_row(call, j) for j in range(len(call.texts))):
            try:
                got = self.score_batch(texts, refs, **ctx)
            except (Exception, SystemExit) as exc:
                scores.append(row_outcome(name, policy, call, j, exc, None))
            else:
                scores.append(row_outcome(name, policy, call, j, None, got))
        return scores
