"""Exact-match rewards for numeric answers."""

from __future__ import annotations

from rewardkit.rewards.base import Reference, Reward, RewardParams, reference_options
from rewardkit.text.numeric import extract_answer, numbers_equal


class MathExactMatch(Reward):
    r"""1.0 when the completion's final number equals the gold number exactly, else 0.0.

    The completion's answer is the content of its last `\boxed{}`, else its last number. Numbers compare as
    exact rationals: `1,234` = `1234`, `+7` = `7.0`, `.5` = `1/2` = `\frac{1}{2}`, `$18` = `18`. The gold may be
    `18`, `#### 18`, `\boxed{18}` or `\frac{63}{400}`; a gold without a number gives None (not applicable); a
    completion without a number gives 0.0. Nothing is evaluated as code; 100k-digit numbers are fine.

    Args:
        reference (`str`, defaults to `"answer"`): dataset column with the gold answer.
        completion_view / reference_view: optional views applied before extraction.

    Example:
    >>> from rewardkit import get_reward
    >>> reward = get_reward("math_exact_match")
    >>> reward(completions=[r"So \boxed{\frac{1}{2}}", "It is 0.5", "maybe 3"], answer=["#### 0.5"] * 3)
    [1.0, 1.0, 0.0]
    """

    name = "math_exact_match"
    needs_reference = True

    class Params(RewardParams):
        reference: str | None = "answer"

    def score(self, completion: str, reference: Reference) -> float | None:
        golds = [g for g in (extract_answer(r) for r in reference_options(reference)) if g is not None]
        if not golds:
            return None
        answer = extract_answer(completion)
        if answer is None:
            return 0.0
        return 1.0 if any(numbers_equal(answer, gold) for gold in golds) else 0.0
