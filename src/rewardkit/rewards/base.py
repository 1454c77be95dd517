"""The reward contract: a picklable callable class that TRL's GRPOTrainer calls by keyword.

Subclasses set `name`, a pydantic `Params` model (extending RewardParams), `needs_reference`, and implement
`score(completion, reference)` or, for batched work, `score_batch(completions, references, **context)`.
The builder validates the parameters once and hands the `Params` instance to the constructor (see
`validation.Configured`); a subclass overriding `__init__` keeps `(self, params=None, /, **kwargs)`.
The base class handles str vs chat completions, the reference column, views, None, errors and time budgets.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar, Literal, Optional, SupportsFloat, cast

from pydantic import Field

from rewardkit.core.errors import ConfigError, DataError, RewardError
from rewardkit.core.validation import Configured, Params, Seconds, ViewSpec
from rewardkit.core.worker import WorkerDied, run_with_timeout
from rewardkit.rewards.inputs import Reference, completion_text, reference_item

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
        None, description="Seconds one call may take; on expiry every row is None (runs in a worker process)."
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


def as_score(value: object, owner: str, index: int) -> float | None:
    """A reward's output for one row as float or None; NaN is None, anything else non-numeric is an error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # bool and str are refused: True or "1.0" taken as 1.0 hides a bug in the reward. numpy/torch scalars
        # are accepted only with a real numeric dtype (np.str_, np.bool_, complex are refused the same way).
        type_name = getattr(type(value), "__module__", "") + "." + type(value).__name__
        dtype = str(getattr(value, "dtype", ""))
        numeric = any(
            dtype.removeprefix("torch.").startswith(k)
            for k in ("float", "int", "uint", "bfloat", "half", "double", "long", "short")
        )
        if not type_name.startswith(("numpy.", "torch.")) or getattr(value, "ndim", None) != 0 or not numeric:
            raise RewardError(
                f"Reward {owner!r} returned {value!r:.40} ({type(value).__name__}) for completion "
                f"{index}; expected a float or None.",
                hint="return float scores.",
            )
    try:
        value = float(cast(SupportsFloat, value))  # int, float or a 0-d numeric numpy/torch scalar (checked above)
    except OverflowError:  # an int beyond float range
        raise RewardError(
            f"Reward {owner!r} returned an integer too large for a float for completion {index}; "
            "scores must be finite.",
            hint="clip the score.",
        ) from None
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise RewardError(
            f"Reward {owner!r} returned {value} for completion {index}; scores must be finite.",
            hint="clip the score or return None for 'not applicable'.",
        )
    return value


class Reward(Configured):
    """Base of all rewards (see module docstring)."""

    name: ClassVar[str] = "reward"
    kind: ClassVar[str] = "reward"
    Params: ClassVar[type[RewardParams]] = RewardParams
    needs_reference: ClassVar[bool] = False
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
        self._completion_view = self.params.completion_view
        self._reference_view = self.params.reference_view
        self._worker = None
        self.error_count = 0
        self.timeout_count = 0
        self.none_reasons: dict[str, int] = {}  # why rows of the last call scored None (rewardkit score prints it)
        self.row_reasons: list[str | None] = []  # the same, per row of the last call (None: scored)
        self._failed_rows: list[int] = []  # rows of the current call whose score is the on_error policy's

    def __repr__(self) -> str:
        changed = self.params.model_dump(exclude_defaults=True)
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_worker"] = None  # a worker process does not travel
        return state

    # --- what subclasses implement -------------------------------------------------------------
    def time_budget(self) -> float | None:
        """Seconds one call may take, run in a worker process (`timeout`); None: no budget."""
        return self.params.timeout

    def batch_none_reasons(self) -> list[str | None] | None:
        """Why each row of the last `score_batch` call scored None, when the reward knows better than "returned
        None" (a remote reward: the server's reasons); None otherwise."""
        return None

    def merges_calls(self) -> bool:
        """Whether a server may merge concurrent calls into one: each row scores the same whatever rows share the
        call (up to float rounding of a batched forward pass), and one call on many rows is cheaper than many
        calls (a model). `rewardkit serve` batches such components across requests."""
        return False

    def score(self, completion: str, reference: Reference) -> float | None:
        """Score one completion (views applied) against its reference (None when not needed)."""
        raise NotImplementedError(f"{type(self).__name__} must implement score() or score_batch()")

    def score_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        """Score many rows; the default calls `score` row by row."""
        refs = references if references is not None else [None] * len(completions)
        return [self.score(c, r) for c, r in zip(completions, refs)]

    # --- the TRL call ----------------------------------------------------------------------------
    def __call__(
        self,
        prompts: list | None = None,
        completions: list | None = None,
        completion_ids: list | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
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
        out: list[float | None] = [None] * n
        why: list[str | None] = [None] * n  # why each row is None
        rows, row_texts, row_refs = [], [], []
        for i, text in enumerate(texts):
            if references is not None:
                ref = self._view_reference(references[i])
                if ref is None:
                    why[i] = "no reference"
                    continue  # nothing to compare with: not applicable
                row_refs.append(ref)
            part = self._completion_view(text) if self._completion_view else text
            if part is None:
                out[i] = 0.0 if self.params.missing == "zero" else None
                why[i] = "view missed" if out[i] is None else None
                if references is not None:
                    row_refs.pop()
                continue
            rows.append(i)
            row_texts.append(part)
        context = {"prompts": prompts, "completion_ids": completion_ids, **kwargs}
        # Per-row columns (lists or tuples) follow the rows that are scored, as lists
        context = {
            k: ([v[i] for i in rows] if isinstance(v, (list, tuple)) and len(v) == n else v)
            for k, v in context.items()
            if k not in ("log_metric", "log_extra")
        }
        timeouts = self.timeout_count
        self._failed_rows = []
        scores = self._run(
            row_texts, row_refs if references is not None else None, rows, context, kwargs.get("log_metric")
        )
        failed = set(self._failed_rows)
        given = self.batch_none_reasons() or [None] * len(rows)
        for i, s, said in zip(rows, scores, given):
            out[i] = s
            if s is None:
                timed_out = self.timeout_count > timeouts
                why[i] = "timeout" if timed_out else "error" if i in failed else said or "returned None"
        self.row_reasons = why
        counts = {k: why.count(k) for k in ("no reference", "view missed", "error", "timeout", "returned None")}
        counts.update((k, why.count(k)) for k in dict.fromkeys(why) if k is not None and k not in counts)
        self.none_reasons = {k: v for k, v in counts.items() if v > 0}
        return out

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

    def _run(
        self, texts: list[str], refs: list | None, rows: list[int], context: dict, log_metric: Any
    ) -> list[float | None]:
        if not texts:
            return []
        budget = self.time_budget()
        if budget is not None:
            try:
                scores, timed_out = run_with_timeout(self, texts, refs, context, budget)
            except WorkerDied as exc:
                if self.params.on_error == "raise":
                    raise
                # Which row killed the process is unknown: every row of the call gets the on_error score.
                self.error_count += len(texts)
                self._failed_rows = list(rows)
                warnings.warn(
                    f"{exc} Under on_error: {self.params.on_error} those rows score "
                    f"{'None' if self.params.on_error == 'none' else '0.0'}.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                if log_metric is not None:
                    log_metric(f"rewardkit/{self.__name__}/errors", float(self.error_count))
                return [None if self.params.on_error == "none" else 0.0] * len(texts)
            if timed_out:
                self.timeout_count += 1
                warnings.warn(
                    f"Reward {self.__name__!r} exceeded its {budget}s budget on "
                    f"{len(texts)} completions; they score None.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                if log_metric is not None:
                    log_metric(f"rewardkit/{self.__name__}/timeouts", float(self.timeout_count))
                return [None] * len(texts)
        else:
            try:
                scores = self.score_batch(texts, refs, **context)
            except (DataError, ConfigError):
                raise  # the input or the setup is wrong: no row-level policy applies
            except (
                Exception,
                SystemExit,
            ) as exc:  # sys.exit() in a reward is a failing reward, not the end of training
                if self.row_fallback:
                    scores = self._rows_one_by_one(texts, refs, rows, context, log_metric)
                else:
                    scores = self._batch_failed(exc, rows, log_metric)
        if not isinstance(scores, (list, tuple)) or len(scores) != len(texts):
            got = len(scores) if isinstance(scores, (list, tuple)) else type(scores).__name__
            raise RewardError(f"Reward {self.__name__!r} returned {got} scores for {len(texts)} completions.")
        return [as_score(s, self.__name__, rows[i]) for i, s in enumerate(scores)]

    def _batch_failed(self, exc: BaseException, rows: list[int], log_metric: Any) -> list[float | None]:
        """on_error for every row of a failed batch (a reward without the row-by-row fallback)."""
        if self.params.on_error == "raise":
            if isinstance(exc, RewardError):
                raise exc
            raise RewardError(
                f"Reward {self.__name__!r} failed on {len(rows)} completions: {type(exc).__name__}: {exc}.",
                hint="set on_error: none | zero to score them instead.",
            ) from exc
        self.error_count += len(rows)
        self._failed_rows = list(rows)
        warnings.warn(
            f"{exc} Under on_error: {self.params.on_error} those {len(rows)} rows score "
            f"{'None' if self.params.on_error == 'none' else '0.0'}.",
            RuntimeWarning,
            stacklevel=4,
        )
        if log_metric is not None:
            log_metric(f"rewardkit/{self.__name__}/errors", float(self.error_count))
        return [None if self.params.on_error == "none" else 0.0] * len(rows)

    def _rows_one_by_one(
        self, texts: list[str], refs: list | None, rows: list[int], context: dict, log_metric: Any
    ) -> list[float | None]:
        """Find the failing rows and apply on_error to them."""
        scores: list[float | None] = []
        failures = 0
        for j, text in enumerate(texts):
            one_ctx = {k: ([v[j]] if isinstance(v, list) and len(v) == len(texts) else v) for k, v in context.items()}
            try:
                scores.extend(self.score_batch([text], [refs[j]] if refs is not None else None, **one_ctx))
            except (DataError, ConfigError):
                raise
            except (Exception, SystemExit) as exc:
                if self.params.on_error == "raise":
                    raise RewardError(
                        f"Reward {self.__name__!r} failed on completion {rows[j]} "
                        f"({text[:80]!r}): {type(exc).__name__}: {exc}.",
                        hint="fix the input or set on_error: none | zero.",
                    ) from exc
                failures += 1
                self._failed_rows.append(rows[j])
                scores.append(None if self.params.on_error == "none" else 0.0)
        if failures:
            self.error_count += failures
            if log_metric is not None:
                log_metric(f"rewardkit/{self.__name__}/errors", float(self.error_count))
        return scores
