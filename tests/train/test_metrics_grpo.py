"""rouge1 and bertscore inside a real TRL GRPOTrainer run (tiny models, CPU), composed with a core reward."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.slow


def test_grpo_with_rouge1_and_bertscore(tiny_lm_dir, tiny_bert_dir, trainer_defaults, tmp_path) -> None:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    import rewardkit

    composed = rewardkit.compose(
        {
            "rewards": {
                "rouge": {"use": "rouge1", "reference": "answer", "weight": 3.0},
                "bert": {
                    "use": "bertscore",
                    "reference": "answer",
                    "model_type": str(tiny_bert_dir),
                    "num_layers": 2,
                    "device": "cpu",
                    "weight": 1.0,
                },
                "em": {"use": "exact_match", "reference": "answer", "weight": 1.0},
            }
        }
    )
    funcs, weights = composed.to_trl()
    assert [f.__name__ for f in funcs] == ["rouge", "bert", "em"] and weights == [3.0, 1.0, 1.0]

    rows = [{"prompt": f"Say the {w} word:", "answer": f"the {w} cat sat"} for w in ("first", "next", "last", "old")]
    args = GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=12,
        learning_rate=1e-3,
        reward_weights=weights,
        **trainer_defaults,
    )
    trainer = GRPOTrainer(model=str(tiny_lm_dir), reward_funcs=funcs, args=args, train_dataset=Dataset.from_list(rows))
    trainer.train()

    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2
    for entry in logs:
        for alias in ("rouge", "bert", "em"):
            value = entry[f"rewards/{alias}/mean"]
            assert math.isfinite(value) and -1.0 - 1e-6 <= value <= 1.0 + 1e-6  # cosine-based for bert
