"""The built-in rewards, one class per family (`rewardkit.rewards`)."""

from __future__ import annotations

from rewardkit.core.hookspecs import Register, hookimpl
from rewardkit.rewards import (
    BLEURT,
    BERTScore,
    Brevity,
    ExactMatch,
    FormatRegex,
    Judge,
    MathExactMatch,
    RewardModel,
    Rouge1,
)


@hookimpl
def register_rewards(register: Register) -> None:
    for reward in (MathExactMatch, ExactMatch, Brevity, FormatRegex, Rouge1, BERTScore, BLEURT, RewardModel, Judge):
        register.reward(reward.name, reward)
