"""Async rewards in TRL's real GRPOTrainer: to_trl() hands over async callables, which TRL awaits together."""

import pytest

from rewardkit import compose
from tests.composition.async_components import CALLS, window

pytestmark = pytest.mark.slow

PROMPTS = [{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a, b in [(1, 2), (3, 4), (2, 2), (5, 1)]]


def test_a_grpo_step_with_two_half_second_async_rewards_spends_under_0_7_s_in_them(
    tiny_lm_dir, tmp_path, trainer_defaults
):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    composed = compose(
        {
            "rewards": {
                "length": "tests.composition.async_components:slow_len",
                "digits": {"use": "tests.composition.async_components:slow_digits"},
            },
            "combine": "0.1*length + digits",
        }
    )
    funcs, weights = composed.to_trl()
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        reward_weights=weights,
        **{**trainer_defaults, "max_steps": 1},
    )
    trainer = GRPOTrainer(
        model=str(tiny_lm_dir), reward_funcs=funcs, args=args, train_dataset=Dataset.from_list(PROMPTS)
    )
    CALLS.clear()
    trainer.train()
    names = sorted(name for name, _, _ in CALLS)
    assert names == ["slow_digits", "slow_len"]  # one call each, in this process (TRL's event loop thread)
    # From the first reward's start to the last one's end: 0.5 s when gathered, 1.0 s one after the other.
    assert window(("slow_len", "slow_digits")) < 0.7
    (log,) = [h for h in trainer.state.log_history if "reward" in h]
    assert log["reward"] == pytest.approx(0.1 * log["rewards/length/mean"] + log["rewards/digits/mean"], abs=1e-5)
