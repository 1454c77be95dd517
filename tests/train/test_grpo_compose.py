"""A composed reward inside TRL's real GRPOTrainer: components logged, weights actually applied."""

import pytest

from rewardkit import compose

pytestmark = pytest.mark.slow

PROMPTS = [{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a, b in [(1, 2), (3, 4), (2, 2), (5, 1)]]


def run_grpo(tiny_lm_dir, tmp_path, trainer_defaults, funcs, weights):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        reward_weights=weights,
        **{**trainer_defaults, "max_steps": 3, "learning_rate": 1e-3},
    )
    trainer = GRPOTrainer(
        model=str(tiny_lm_dir), reward_funcs=funcs, args=args, train_dataset=Dataset.from_list(PROMPTS)
    )
    trainer.train()
    return trainer


def test_linear_composition_logs_every_component(tiny_lm_dir, tmp_path, trainer_defaults):
    composed = compose(
        {
            "rewards": {
                "acc": {"use": "math_exact_match", "completion_view": "last_number"},
                "digits": {"use": "format_regex", "pattern": r"\d"},
                "short": {"use": "brevity", "max_length": 16},
            },
            "combine": "(2*acc + digits + short) / 4",
        }
    )
    funcs, weights = composed.to_trl()
    trainer = run_grpo(tiny_lm_dir, tmp_path, trainer_defaults, funcs, weights)
    assert trainer.state.global_step == 3
    assert trainer.reward_weights.tolist() == pytest.approx([0.5, 0.25, 0.25])
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logs) == 3
    for h in logs:
        means = {a: h[f"rewards/{a}/mean"] for a in ("acc", "digits", "short")}
        assert 0.0 <= means["short"] <= 1.0
        # TRL's logged total equals the weighted sum of the logged component means: the weights were used.
        assert h["reward"] == pytest.approx(
            0.5 * means["acc"] + 0.25 * means["digits"] + 0.25 * means["short"], abs=1e-5
        )


def test_nonlinear_composition_is_one_function(tiny_lm_dir, tmp_path, trainer_defaults):
    composed = compose(
        {
            "rewards": {"acc": {"use": "math_exact_match"}, "short": {"use": "brevity", "max_length": 16}},
            "combine": "max(acc, short)",
        },
        name="best_of",
    )
    funcs, weights = composed.to_trl()
    trainer = run_grpo(tiny_lm_dir, tmp_path, trainer_defaults, funcs, weights)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert logs and all("rewards/best_of/mean" in h for h in logs)
    assert all(f"rewards/best_of/{a}/mean" in h for h in logs for a in ("acc", "short"))
    for h in logs:
        assert h["rewards/best_of/mean"] >= h["rewards/best_of/short/mean"] - 1e-6
