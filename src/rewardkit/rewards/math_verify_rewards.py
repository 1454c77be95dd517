r"""Symbolic math answers checked with math-verify, each item bounded by a deadline in a worker process."""

from __future__ import annotations

from typing import Any, Callable, Literal

from pydantic import Field

from rewardkit.core.errors import ConfigError, RewardError
from rewardkit.core.pool import Outcome, ProcessPool, shared_pool
from rewardkit.core.validation import Seconds
from rewardkit.rewards import math_answers
from rewardkit.rewards.base import Reference, Reward, RewardParams, reference_options
from rewardkit.rewards.calls import RowNote

# A worker stops a task itself at this share of the deadline (it survives; a fresh one costs seconds of imports);
# the pool kills it at the deadline when the task could not be stopped from inside.
INNER_SHARE = 0.9
START_TIMEOUT = 120.0  # seconds a fresh worker may take to import math-verify (a loaded machine, a cold disk)


def run_items(fn: Callable[[Any], Any], items: list, timeout: float, workers: int) -> list[Outcome]:
    """`fn(item)` for each item in the process-wide math-verify pool, each item bounded by `timeout` seconds."""
    if not items:
        return []
    pool = shared_pool("math_verify", workers)
    try:
        return _map(pool, fn, items, timeout, workers)
    except RuntimeError as exc:
        if "bootstrapping phase" not in str(exc):
            raise
        raise ConfigError(
            "math_verify runs in worker processes, which a script can only start from its main block.",
            hint="put the script's code under `if __name__ == '__main__':`.",
        ) from None


def _map(pool: ProcessPool, fn: Callable[[Any], Any], items: list, timeout: float, workers: int) -> list[Outcome]:
    # Each idle worker imports math-verify first (milliseconds once done): an item's deadline starts when a
    # worker takes it, and a fresh worker's imports must not count against it. A worker that replaces one killed
    # in the middle of a call still pays its imports (about a second) on its first item.
    pool.map(math_answers.warm_up, [None] * workers, timeout=START_TIMEOUT)
    return pool.map(fn, items, timeout=timeout)


class MathVerify(Reward):
    r"""1.0 when the completion's answer equals the gold symbolically (math-verify), else 0.0.

    The port of TRL's `accuracy_reward` (`completion_view: after_think` is its `reasoning_accuracy_reward`): the
    completion is parsed as TRL parses it (LaTeX only, the first `\boxed{}` first, nothing without an anchor), so
    `\frac{\sqrt{2}}{2}` = `\frac{1}{\sqrt{2}}`, `(x+1)^2` = `x^2+2x+1`, `\{1,2\}` = `\{2,1\}`, `50\%` = `0.5`.
    The gold may be LaTeX without delimiters (read whole, where TRL reads `2\sqrt{3}` as 2), `$...$`,
    `\boxed{}`, GSM8K's `#### 18`, a number or prose; a gold math-verify cannot read scores None (reason
    `unparsable gold`). Each distinct gold is parsed once per call. Parsing and checking run in worker processes
    that are killed at the deadline, in any thread or process: an item past it scores 0.0 (reason `timeout`,
    counted in `timeout_count`) and the call never waits longer for it. Needs `pip install 'rewardkit[math]'`.
    `math_exact_match` is the fast exact path for answers that are plain numbers.

    Args:
        reference (`str`, defaults to `"answer"`): dataset column with the gold answer (TRL's datasets: `solution`).
        timeout (`float`, defaults to 5.0): seconds one item (parse and verify) may take.
        workers (`int`, defaults to 2): worker processes.
        on_timeout (`"zero" | "none"`, defaults to `"zero"`): the score of an item past its deadline.

    Example:
    >>> from rewardkit import get_reward
    >>> reward = get_reward("math_verify")
    >>> reward(completions=[r"So $\boxed{\frac{1}{\sqrt{2}}}$", r"\boxed{0.7}", "no idea"],
    ...        answer=[r"\frac{\sqrt{2}}{2}"] * 3)
    [1.0, 0.0, 0.0]
    """

    name = "math_verify"
    needs_reference = True
    own_workers = True

    class Params(RewardParams):
        reference: str | None = "answer"
        timeout: Seconds = Field(
            5.0, description="Seconds one item (parse and verify) may take; past it the item scores 0.0."
        )
        workers: int = Field(2, ge=1, le=64, description="Worker processes that parse and verify.")
        on_timeout: Literal["zero", "none"] = Field(
            "zero", description="Score of an item past its deadline: 0.0, or None (not applicable)."
        )

    def __init__(self, params: RewardParams | None = None, /, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        math_answers.require_math_verify(self.owner())

    def score_batch(self, completions: list[str], references: list[Reference] | None, **context: Any) -> list[Any]:
        p = self.params
        golds = [reference_options(r) for r in references or [None] * len(completions)]
        distinct = list(dict.fromkeys(g for options in golds for g in options))
        parsed: dict[str, Any] = {}  # gold text -> (parsable, payload), or LATE
        budget = p.timeout * INNER_SHARE
        gold_tasks = [(gold, budget) for gold in distinct]
        for gold, outcome in zip(distinct, run_items(math_answers.parse_gold, gold_tasks, p.timeout, p.workers)):
            parsed[gold] = self._value(outcome, gold)
        out: list[Any] = [None] * len(completions)
        tasks, rows = [], []
        for i, (options, completion) in enumerate(zip(golds, completions)):
            usable = [(g, parsed[g][1]) for g in options if parsed[g] != math_answers.LATE and parsed[g][0]]
            if not usable:
                timed_out = any(parsed[g] == math_answers.LATE for g in options)
                out[i] = RowNote(None, "gold parse timeout" if timed_out else "unparsable gold")
                continue
            tasks.append((usable, completion))
            rows.append(i)
        late = RowNote(None if p.on_timeout == "none" else 0.0, "timeout")
        # GRPO samples the same text more than once: each distinct (golds, completion) is checked once.
        distinct_tasks = list(dict.fromkeys((tuple(usable), completion) for usable, completion in tasks))
        check_tasks = [(list(g), c, budget) for g, c in distinct_tasks]
        outcomes = run_items(math_answers.check_answer, check_tasks, p.timeout, p.workers)
        verdicts = dict(zip(distinct_tasks, outcomes))
        for i, (usable, completion) in zip(rows, tasks):
            outcome = verdicts[(tuple(usable), completion)]
            value = self._value(outcome, completion)
            out[i] = late if value == math_answers.LATE else value
        return out

    def _value(self, outcome: Outcome, item: str) -> Any:
        """The task's value; LATE past the deadline, whether the worker's timer stopped it or the pool killed it."""
        if outcome.status == "timeout":
            return math_answers.LATE
        if outcome.ok:
            return outcome.value
        if outcome.died and "before it started" in outcome.error:  # every row would fail the same way: stop here
            raise ConfigError(
                f"reward {self.__name__!r}: its worker process could not start ({outcome.error}).",
                hint="a script that scores with math_verify keeps its code under `if __name__ == '__main__':` "
                "(workers re-import the script); the worker's own error is printed above.",
            )
        raise RewardError(f"math-verify failed on {item[:80]!r}: {outcome.error}")
