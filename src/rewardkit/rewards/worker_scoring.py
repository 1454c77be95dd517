"""A sync reward scored in worker processes (`core.pool`): `timeout:` bounds each task, `workers: N` splits a batch.

The reward is pickled once and sent with each task; a worker keeps the copies it unpickled (by the reward's
token), so a model a reward loads stays loaded between calls. Each task's reply comes back on its own worker's
pipe, so calls from many threads each get their own scores. Per-call counts go to the call (`rewards.calls`).
"""

from __future__ import annotations

import pickle
import threading
import warnings
from collections import OrderedDict
from typing import Any

from rewardkit.core.errors import ConfigError, DataError, RewardError, RewardkitError
from rewardkit.core.pool import ProcessPool
from rewardkit.core.worker import WorkerDied
from rewardkit.rewards.calls import Call

Reward = Any  # a rewards.base.Reward (not imported: base imports this module)

_SENDABLE = ("prompts", "completion_ids")
_COPIES: OrderedDict[str, Any] = OrderedDict()  # in a worker: the rewards it unpickled, by token (most recent last)
_COPIES_KEPT = 8
_WIRE_LOCK = threading.Lock()


def _restore(token: str, wire: bytes) -> Any:
    """In a worker, while the task is received: the reward's copy, unpickled once per worker."""
    reward = _COPIES.get(token)
    if reward is None:
        reward = _COPIES[token] = pickle.loads(wire)
        while len(_COPIES) > _COPIES_KEPT:
            _COPIES.popitem(last=False)
    _COPIES.move_to_end(token)
    return reward


class _Sent:
    """A reward pickled once in the parent; unpickles in a worker to its cached copy (outside the time budget)."""

    def __init__(self, token: str, wire: bytes) -> None:
        self.token, self.wire = token, wire

    def __reduce__(self) -> tuple:
        return _restore, (self.token, self.wire)


def score_job(job: tuple) -> tuple[str, Any]:
    """In a worker: score one chunk as in process; ("ok", (scores, errors)) or ("raise", the rewardkit error)."""
    reward, texts, refs, context, rows = job
    call = Call(out=[None] * len(texts), refs=refs, rows=rows, texts=texts, context=context)
    try:
        try:
            scores = reward.score_batch(texts, refs, **context)
        except (DataError, ConfigError):
            raise
        except (Exception, SystemExit):
            scores = reward.rows_one_by_one(call)
    except RewardkitError as exc:  # raised here as in process: the parent raises the same error (it pickles whole)
        return "raise", exc
    return "ok", (list(scores) if isinstance(scores, (list, tuple)) else scores, call.errors, call.why)


def _wire(reward: Reward) -> bytes:
    with _WIRE_LOCK:
        if reward._wire is None:
            try:
                reward._wire = pickle.dumps(reward)
            except Exception as exc:
                raise RewardError(
                    f"Reward {reward.__name__!r} cannot be sent to its worker process (timeout: and workers: run "
                    f"it in one): {type(exc).__name__}: {exc}.",
                    hint="define the reward function at module level (no lambda or closure), or remove "
                    "timeout: and workers:.",
                ) from None
        return reward._wire


def _chunks(n: int, k: int) -> list[tuple[int, int]]:
    """`k` contiguous (start, end) ranges covering n rows, sizes differing by at most one."""
    k = max(1, min(k, n))
    bounds = [n * i // k for i in range(k + 1)]
    return list(zip(bounds, bounds[1:]))


def pool_of(reward: Reward) -> ProcessPool:
    """This reward's pool (`workers` processes, else one), made on first use; it goes when the reward goes.

    Kept on the instance, not in `core.pool.shared_pool`: a reward that is garbage collected closes its pipes, and
    its workers exit, as before pools existed. A pickled copy gets a pool of its own where it lands.
    """
    with _WIRE_LOCK:
        if reward._pool is None:
            reward._pool = ProcessPool(reward.params.workers or 1, name=f"reward {reward.__name__}")
        return reward._pool


def score_in_workers(reward: Reward, call: Call) -> list:
    """Scores of `call`'s rows from the reward's worker pool (`workers` chunks, each within `timeout`)."""
    params = reward.params
    sent = _Sent(reward._token, _wire(reward))
    n = len(call.texts)
    # Columns are plain data; trainer objects (state, environments) stay in this process.
    context = {k: v for k, v in call.context.items() if k in _SENDABLE or isinstance(v, list)}
    spans = _chunks(n, params.workers or 1)
    jobs = [
        (
            sent,
            call.texts[a:b],
            call.refs[a:b] if call.refs is not None else None,
            {k: (v[a:b] if isinstance(v, list) and len(v) == n else v) for k, v in context.items()},
            call.rows[a:b],
        )
        for a, b in spans
    ]
    outcomes = pool_of(reward).map(score_job, jobs, timeout=params.timeout)
    scores: list = []
    for (a, b), outcome in zip(spans, outcomes):
        size = b - a
        if outcome.ok:
            kind, value = outcome.value
            if kind == "raise":
                raise value
            got, errors, why = value
            if not isinstance(got, list) or len(got) != size:
                count = len(got) if isinstance(got, list) else type(got).__name__
                raise RewardError(f"Reward {reward.__name__!r} returned {count} scores for {size} completions.")
            call.errors += errors
            call.why.update(why)  # which rows failed under on_error: none (indices are the call's)
            scores.extend(got)
        elif outcome.status == "timeout":
            warnings.warn(
                f"Reward {reward.__name__!r} exceeded its {params.timeout}s budget on {size} completions; "
                "they score None.",
                RuntimeWarning,
                stacklevel=4,
            )
            call.timeouts += size
            call.why.update(dict.fromkeys(call.rows[a:b], "timeout"))
            scores.extend([None] * size)
        elif outcome.died:
            died = WorkerDied(
                f"Reward {reward.__name__!r}: {outcome.error.removeprefix('WorkerDied: ').rstrip('.')} "
                f"while scoring {size} completions.",
                hint="something in the reward ended its process (os._exit, a crash, out of memory); run it without "
                "timeout: and workers: to see where.",
            )
            if params.on_error == "raise":
                raise died
            # Which row killed the process is unknown: every row of the chunk gets the on_error score.
            warnings.warn(
                f"{died.problem} Under on_error: {params.on_error} those rows score "
                f"{'None' if params.on_error == 'none' else '0.0'}.",
                RuntimeWarning,
                stacklevel=4,
            )
            call.errors += size
            if params.on_error == "none":
                call.why.update(dict.fromkeys(call.rows[a:b], "error"))
            scores.extend([None if params.on_error == "none" else 0.0] * size)
        else:
            raise RewardError(
                f"Reward {reward.__name__!r} failed in its worker process: {outcome.error}",
                hint="the reward must be importable in a fresh process (module-level function or class).",
            )
    return scores
