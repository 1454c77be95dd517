"""GDPO (`multi_objective_aggregation: normalize_then_sum`) in TRL's real GRPOTrainer: a linear composition is one
function per component, so each component is normalised within its group before the weighted sum."""

import pytest

from rewardkit import compose

pytestmark = pytest.mark.slow

PROMPTS = [{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a, b in [(1, 2), (3, 4), (2, 2), (5, 1)]]


def normalize_then_sum(per_func, weights, groups):
    """TRL 1.16's formula, written out: z-score each reward within its group, weight, sum, scale over the batch."""
    import torch
    from trl.trainer.utils import nanstd

    grouped = per_func.view(-1, groups, per_func.shape[1])
    z = (grouped - grouped.mean(dim=1, keepdim=True)) / (nanstd(grouped, dim=1, keepdim=True) + 1e-4)
    total = (z.view(-1, per_func.shape[1]) * torch.tensor(weights)).sum(dim=1)
    return (total - total.mean()) / (nanstd(total) + 1e-4)


def sum_then_normalize(per_func, weights, groups):
    import torch
    from trl.trainer.utils import nanstd

    total = (per_func * torch.tensor(weights)).sum(dim=1).view(-1, groups)
    return ((total - total.mean(dim=1, keepdim=True)) / (nanstd(total, dim=1, keepdim=True) + 1e-4)).view(-1)


def test_normalize_then_sum_normalises_each_component_within_its_group(tiny_lm_dir, tmp_path, trainer_defaults):
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    composed = compose(
        {
            "rewards": {
                "short": {"use": "brevity", "max_length": 40},  # in [0, 1], varies a little
                "repeats": {"use": "repetition_penalty", "ngram_size": 1},  # in [-1, 0]: another scale
            },
            "combine": "10 * short + repeats",
        }
    )
    kwargs, weights = composed.to_trl_kwargs()
    assert len(kwargs["reward_funcs"]) == 2 and weights == [10.0, 1.0]
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=12,
        reward_weights=weights,
        multi_objective_aggregation="normalize_then_sum",
        **{**trainer_defaults, "max_steps": 1, "temperature": 1.5},
    )
    trainer = GRPOTrainer(model=str(tiny_lm_dir), args=args, train_dataset=Dataset.from_list(PROMPTS), **kwargs)
    trainer.train()
    per_func = torch.tensor([list(trainer._logs["rewards"][name]) for name in ("short", "repeats")]).T
    logged = torch.tensor(list(trainer._logs["advantages"]))
    assert per_func.shape == (8, 2) and per_func.std(dim=0).min() > 0  # both components vary
    assert torch.allclose(logged, normalize_then_sum(per_func, weights, 4), atol=1e-4)
    # The same rewards summed first would have given other advantages: the per-component normalisation happened.
    assert not torch.allclose(logged, sum_then_normalize(per_func, weights, 4), atol=1e-2)
