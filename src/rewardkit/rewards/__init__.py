"""Built-in rewards, one module per family, registered through the same hook as any plugin."""

from __future__ import annotations

from ..hookspecs import Register, hookimpl
from .base import Reward
from .bertscore_rewards import BERTScore
from .bleurt_rewards import BLEURT
from .format_rewards import FormatRegex
from .function_rewards import FunctionReward
from .length_rewards import Brevity
from .math_rewards import MathExactMatch
from .reward_model import RewardModel
from .rouge_rewards import Rouge1
from .text_rewards import ExactMatch

BUILTIN_REWARDS: tuple[type[Reward], ...] = (MathExactMatch, ExactMatch, Brevity, FormatRegex, Rouge1, BERTScore,
                                              BLEURT, RewardModel)

__all__ = ["BERTScore", "BLEURT", "Brevity", "ExactMatch", "FormatRegex", "FunctionReward", "MathExactMatch", "Reward",
           "RewardModel", "Rouge1"]


@hookimpl
def register_rewards(register: Register) -> None:
    for reward in BUILTIN_REWARDS:
        register.reward(reward.name, reward)
