r"""Symbolic math answers checked with math-verify, each item bounded by a deadline in a worker process."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rewardkit.core.errors import RewardError
from rewardkit.core.validation import Seconds
from rewardkit.rewards import math_answers
from rewardkit.rewards.base import Reference, Reward, RewardParams, RowNote, reference_options
from rewardkit.rewards.math_runner import run_items


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
    call_timeout = False

    class Params(RewardParams):
        reference: str | None = "answer"
        timeout: Seconds = Field(  # type: ignore[assignment]
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
        parsed: dict[str, Any] = {}  # gold text -> parsed list ([] unparsable) or "timeout"
        for gold, outcome in zip(distinct, run_items(math_answers.parse_gold, distinct, p.timeout, p.workers)):
            parsed[gold] = "timeout" if outcome.status == "timeout" else self._value(outcome, gold)
        out: list[Any] = [None] * len(completions)
        tasks, rows = [], []
        for i, (options, completion) in enumerate(zip(golds, completions)):
            usable = [parsed[g] for g in options if isinstance(parsed[g], list) and parsed[g]]
            if not usable:
                timed_out = any(parsed[g] == "timeout" for g in options)
                out[i] = RowNote(None, "gold parse timeout" if timed_out else "unparsable gold")
                continue
            tasks.append((usable, completion))
            rows.append(i)
        late = RowNote(None if p.on_timeout == "none" else 0.0, "timeout")
        for i, task, outcome in zip(rows, tasks, run_items(math_answers.check_answer, tasks, p.timeout, p.workers)):
            out[i] = late if outcome.status == "timeout" else self._value(outcome, task[1])
        return out

    def _value(self, outcome: Any, item: str) -> Any:
        if outcome.status == "ok":
            return outcome.value
        raise RewardError(f"math-verify failed on {item[:80]!r}: {outcome.error}")
