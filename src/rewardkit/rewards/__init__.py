"""Built-in rewards, one module per family (`default_plugins.rewards` registers them like any plugin's)."""

from __future__ import annotations

from rewardkit.rewards.base import Reward
from rewardkit.rewards.bertscore_rewards import BERTScore
from rewardkit.rewards.bleurt_rewards import BLEURT
from rewardkit.rewards.format_rewards import FormatRegex
from rewardkit.rewards.function_rewards import FunctionReward
from rewardkit.rewards.judge_rewards import Judge
from rewardkit.rewards.length_rewards import Brevity, CosineLength
from rewardkit.rewards.math_rewards import MathExactMatch
from rewardkit.rewards.math_verify_rewards import MathVerify
from rewardkit.rewards.reasoning_rewards import ReasoningSteps, TagCount, ThinkFormat
from rewardkit.rewards.remote_rewards import Remote
from rewardkit.rewards.repetition_rewards import RepetitionPenalty
from rewardkit.rewards.reward_model import RewardModel
from rewardkit.rewards.rouge_rewards import Rouge1
from rewardkit.rewards.text_rewards import ExactMatch

__all__ = [
    "BERTScore",
    "BLEURT",
    "Brevity",
    "CosineLength",
    "ExactMatch",
    "FormatRegex",
    "FunctionReward",
    "Judge",
    "MathExactMatch",
    "MathVerify",
    "ReasoningSteps",
    "RepetitionPenalty",
    "Remote",
    "Reward",
    "RewardModel",
    "Rouge1",
    "TagCount",
    "ThinkFormat",
]
