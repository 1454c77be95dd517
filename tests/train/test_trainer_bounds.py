"""Trainer values out of range are one line naming the key when the config loads, before any model or torch."""

from __future__ import annotations

import pytest

from rewardkit.core.errors import ConfigError
from rewardkit.train.config import load_stages
from tests.conftest import run_cli

CONFIG = {
    "stage": "grpo",
    "model": "no/such-model",
    "dataset": {"path": "rows.jsonl"},
    "rewards": {"rewards": {"em": "exact_match"}},
    "trainer": {"num_generations": 2, "per_device_train_batch_size": 2},
}


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.num_generations=0", r"trainer.num_generations is 0; it must be at least 2"),
        ("trainer.per_device_train_batch_size=0", r"trainer.per_device_train_batch_size is 0; it must be at least 1"),
        ("trainer.learning_rate=-1", r"trainer.learning_rate is -1; it must be at least 0"),
        ("trainer.max_completion_length=0", r"trainer.max_completion_length is 0; it must be at least 1"),
        ("trainer.seed=4294967296", r"trainer.seed is 4294967296; it must be at least 0 and at most 4294967295"),
        ("trainer.seed=-1", r"trainer.seed is -1"),
        ("trainer.warmup_ratio=1.5", r"trainer.warmup_ratio is 1.5; it must be at least 0 and at most 1"),
        ("trainer.temperature=0", r"trainer.temperature is 0; it must be above 0"),
        # a negative clip range made every clipped ratio 0 (clamp with low > high) and trained on silently
        ("trainer.epsilon=-1", r"trainer.epsilon is -1; it must be above 0"),
        ("trainer.epsilon_high=-0.2", r"trainer.epsilon_high is -0.2; it must be above 0"),
        ("trainer.delta=0", r"trainer.delta is 0; it must be above 0"),
        ("trainer.top_k=-1", r"trainer.top_k is -1; it must be at least 0"),
    ],
)
def test_out_of_range_trainer_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_stages(CONFIG, [override])
    assert "\n" not in str(info.value)


def test_in_range_values_load():
    stages, _, _ = load_stages(CONFIG, ["trainer.seed=4294967295", "trainer.learning_rate=0", "trainer.max_steps=-1"])
    assert stages[0].trainer["seed"] == 4294967295


def test_the_cli_says_it_in_one_line_before_the_model_is_looked_up(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "stage: grpo\nmodel: no/such-model\ndataset: {path: rows.jsonl}\nrewards: {rewards: {em: exact_match}}\n"
    )
    result = run_cli("train", "c.yaml", "--set", "trainer.num_generations=0", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "trainer.num_generations is 0" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.loss_type=bogus", r"trainer.loss_type is 'bogus'; GRPO accepts 'grpo', 'dr_grpo', 'dapo'"),
        ("trainer.scale_rewards=bogus", r"trainer.scale_rewards is 'bogus'; GRPO accepts 'group', 'batch', 'none'"),
        ("trainer.importance_sampling_level=seq", r"trainer.importance_sampling_level is 'seq'; GRPO accepts 'token'"),
    ],
)
def test_a_grpo_setting_trl_checks_mid_run_is_checked_when_the_config_loads(override, message):
    """TRL raised these as a ValueError traceback at the first training step, after the model had loaded."""
    with pytest.raises(ConfigError, match=message):
        load_stages(CONFIG, [override])
    from rewardkit.train.precheck import check_trainer_value_types
    from rewardkit.train.stages import check_trainer_values

    [stage], _, _ = load_stages(CONFIG, ["trainer.scale_rewards=false", "trainer.loss_type=dr_grpo"])
    check_trainer_value_types(stage, "c.yaml")  # TRL's own values pass, scale_rewards: false too (was refused:
    check_trainer_values(stage, "c.yaml")  # "Input should be a valid string")


def test_the_grpo_choices_are_the_values_trls_trainer_tests():
    """Every value GRPOTrainer's source compares loss_type / scale_rewards / importance_sampling_level with is
    accepted, and nothing else (read from the installed TRL)."""
    import inspect
    import re

    from trl import GRPOTrainer

    from rewardkit.train.trainer_bounds import GRPO_CHOICES

    source = inspect.getsource(inspect.getmodule(GRPOTrainer))
    for key, choices in GRPO_CHOICES.items():
        compared = re.findall(rf"(?:self|args)\.{key} (?:==|!=|in) (\[[^\]]*\]|\"[^\"]*\")", source)
        seen = {v for text in compared for v in re.findall(r"\"([^\"]*)\"", text)}
        assert seen == {c for c in choices if isinstance(c, str)}, (key, seen)
