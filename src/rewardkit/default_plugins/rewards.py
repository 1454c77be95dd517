"""The built-in rewards, one class per family (`rewardkit.rewards`)."""

from __future__ import annotations

from rewardkit.core.hookspecs import Register, hookimpl
from rewardkit.rewards import (
    BLEURT,
    BERTScore,
    Brevity,
    CosineLength,
    ExactMatch,
    FormatRegex,
    Judge,
    MathExactMatch,
    MathVerify,
    ReasoningSteps,
    Remote,
    RepetitionPenalty,
    RewardModel,
    Rouge1,
    TagCount,
    ThinkFormat,
)

BUILTIN_REWARDS = (
    MathExactMatch,
    MathVerify,
    ExactMatch,
    Brevity,
    CosineLength,
    FormatRegex,
    ThinkFormat,
    TagCount,
    ReasoningSteps,
    RepetitionPenalty,
    Rouge1,
    BERTScore,
    BLEURT,
    RewardModel,
    Judge,
    Remote,
)


@hookimpl
def register_rewards(register: Register) -> None:
    for reward in BUILTIN_REWARDS:
        register.reward(reward.name, reward)
