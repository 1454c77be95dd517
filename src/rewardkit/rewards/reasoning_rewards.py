"""Format rewards of reasoning models: the think block, the tag count, step-by-step markers (TRL, open-r1)."""

from __future__ import annotations

import re

from pydantic import Field

from rewardkit.rewards.base import Reference, Reward, RewardParams

_TAG = Field("think", pattern=r"^[A-Za-z][\w-]*$", description="Tag name without brackets.")


class ThinkFormat(Reward):
    r"""1.0 when the completion starts with `<think>`, opens no second one and closes it, else 0.0.

    TRL's `think_format_reward` (its regex `^<think>(?!.*<think>)(.*?)</think>.*$`, DOTALL), checked with string
    search instead of a regex so hostile text costs linear time.

    Args:
        tag (`str`, defaults to `"think"`): the tag name.

    Example:
    >>> from rewardkit import get_reward
    >>> get_reward("think_format")(completions=["<think>\nhm\n</think>\n42", "<think>hm", "42 <think>a</think>"])
    [1.0, 0.0, 0.0]
    """

    name = "think_format"

    class Params(RewardParams):
        tag: str = _TAG

    def score(self, completion: str, reference: Reference) -> float | None:
        opening, closing = f"<{self.params.tag}>", f"</{self.params.tag}>"
        start = len(opening)
        ok = completion.startswith(opening) and opening not in completion[start:] and closing in completion[start:]
        return 1.0 if ok else 0.0


class TagCount(Reward):
    r"""0.25 for each of `<think>\n`, `\n</think>\n`, `\n<answer>\n`, `\n</answer>` present exactly once.

    open-r1's `tag_count_reward` (src/open_r1/rewards.py): partial credit towards its `format_reward` layout.

    Args:
        think (`str`, defaults to `"think"`): the reasoning tag name.
        answer (`str`, defaults to `"answer"`): the answer tag name.

    Example:
    >>> from rewardkit import get_reward
    >>> get_reward("tag_count")(completions=["<think>\nhm\n</think>\n<answer>\n4\n</answer>", "<think>\nhm"])
    [1.0, 0.25]
    """

    name = "tag_count"

    class Params(RewardParams):
        think: str = _TAG
        answer: str = Field("answer", pattern=r"^[A-Za-z][\w-]*$", description="Tag name without brackets.")

    def score(self, completion: str, reference: Reference) -> float | None:
        t, a = self.params.think, self.params.answer
        parts = (f"<{t}>\n", f"\n</{t}>\n", f"\n<{a}>\n", f"\n</{a}>")
        return 0.25 * sum(completion.count(part) == 1 for part in parts)


# open-r1's markers: "Step 1:", "1." at the very start, "-" or "*" bullets after a newline, transition words.
_STEPS = re.compile(r"Step \d+:|\A\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,")


class ReasoningSteps(Reward):
    r"""min(1, markers / min_steps): rewards step-by-step writing ("Step 1:", bullets, "First,", "Finally,").

    open-r1's `reasoning_steps_reward` (src/open_r1/rewards.py): it counts the non-overlapping matches of
    `Step \d+:`, a `1.` at the start of the text, `\n-`, `\n*`, `First,`, `Second,`, `Next,`, `Finally,`.

    Args:
        min_steps (`int`, defaults to 3): markers for the full reward (open-r1's "magic number 3").

    Example:
    >>> from rewardkit import get_reward
    >>> get_reward("reasoning_steps")(completions=["Step 1: a\nStep 2: b\nFinally, c", "First, guess."])
    [1.0, 0.3333333333333333]
    """

    name = "reasoning_steps"

    class Params(RewardParams):
        min_steps: int = Field(3, ge=1, le=1000)

    def score(self, completion: str, reference: Reference) -> float | None:
        return min(1.0, len(_STEPS.findall(completion)) / self.params.min_steps)
