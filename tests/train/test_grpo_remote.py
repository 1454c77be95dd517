"""A real CPU GRPO run whose bertscore runs behind `rewardkit serve` logs the rewards of the same run scored locally."""

from __future__ import annotations

import json

import pytest

from rewardkit import compose, get_reward
from tests.conftest import rewardkit_serve

pytestmark = pytest.mark.slow

PROMPTS = [{"prompt": f"{a}+{b}=", "answer": f"{a} plus {b} is {a + b}"} for a, b in [(1, 2), (3, 4), (2, 2), (5, 1)]]


def run_grpo(tiny_lm_dir, tmp_path, trainer_defaults, funcs) -> list[dict]:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        **{**trainer_defaults, "max_steps": 2, "learning_rate": 1e-3},
    )
    trainer = GRPOTrainer(
        model=str(tiny_lm_dir), reward_funcs=funcs, args=args, train_dataset=Dataset.from_list(PROMPTS)
    )
    trainer.train()
    return [h for h in trainer.state.log_history if "reward" in h]


def test_served_bertscore_logs_the_local_rewards(tiny_lm_dir, tiny_bert_dir, tmp_path, trainer_defaults):
    spec = {"rewards": {"bs": {"use": "bertscore", "model_type": str(tiny_bert_dir), "num_layers": 2}}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    local = run_grpo(tiny_lm_dir, tmp_path / "local", trainer_defaults, compose(spec).to_trl()[0])
    with rewardkit_serve(tmp_path / "spec.json", log=tmp_path / "server.log") as server:
        remote = get_reward("remote", url=[server.url], name="bs", timeout=120)
        served = run_grpo(tiny_lm_dir, tmp_path / "served", trainer_defaults, [remote])
    keys = ("reward", "reward_std", "rewards/bs/mean", "rewards/bs/std")
    assert len(local) == len(served) == 2
    assert [[h[k] for k in keys] for h in served] == [[h[k] for k in keys] for h in local]
    assert any(h["reward_std"] > 0 for h in local)  # the completions differ: a real signal, not a constant
