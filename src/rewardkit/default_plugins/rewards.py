"""The built-in rewards, one class per family (`rewardkit.rewards`)."""

from __future__ import annotations

from rewardkit.core.hookspecs import Register, hookimpl
from rewardkit.rewards import BUILTIN_REWARDS


@hookimpl
def register_rewards(register: Register) -> None:
    for reward in BUILTIN_REWARDS:
        register.reward(reward.name, reward)
