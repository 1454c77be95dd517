"""Real TRL trainers (SFT, reward, DPO, GRPO) on the tiny local models, on CPU, a few steps each."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.slow

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
STEPS = 2


class LengthReward:
    """Picklable reward: longer completions score higher; records what TRL passed in."""

    __name__ = "length_reward"  # TRL logs rewards/<__name__>/mean; class instances fall back to the class name

    def __init__(self) -> None:
        self.seen_completion_types: set[str] = set()
        self.seen_kwargs: set[str] = set()

    def __call__(self, prompts, completions, **kwargs):
        self.seen_kwargs.update(kwargs)
        out = []
        for completion in completions:
            self.seen_completion_types.add(type(completion).__name__)
            text = completion if isinstance(completion, str) else completion[-1]["content"]
            out.append(len(text) / 16.0)
        return out


def _losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def _assert_trained(trainer) -> None:
    assert trainer.state.global_step == STEPS
    losses = _losses(trainer)
    assert len(losses) == STEPS
    assert all(math.isfinite(loss) for loss in losses)


def _lora():
    from peft import LoraConfig

    return LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")


def test_sft_conversational(tiny_lm_dir, trainer_defaults, tmp_path):
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rows = [
        {
            "messages": [
                {"role": "system", "content": "Answer with a number."},
                {"role": "user", "content": f"What is {i}+{i}?"},
                {"role": "assistant", "content": str(2 * i)},
            ]
        }
        for i in range(8)
    ]
    args = SFTConfig(
        output_dir=str(tmp_path),
        max_steps=STEPS,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        max_length=64,
        assistant_only_loss=True,  # needs the {% generation %} markers of the tiny chat template
        **trainer_defaults,
    )
    trainer = SFTTrainer(model=str(tiny_lm_dir), args=args, train_dataset=Dataset.from_list(rows))
    before = trainer.model.get_input_embeddings().weight.detach().clone()
    trainer.train()

    _assert_trained(trainer)
    assert not torch.equal(before, trainer.model.get_input_embeddings().weight.detach())


def test_reward_trainer(tiny_lm_dir, trainer_defaults, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    rows = [{"chosen": f"The answer is {i}.", "rejected": f"no idea {i * 7}"} for i in range(8)]
    model = AutoModelForSequenceClassification.from_pretrained(tiny_lm_dir, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    args = RewardConfig(
        output_dir=str(tmp_path),
        max_steps=STEPS,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        max_length=32,
        **trainer_defaults,
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.train()

    _assert_trained(trainer)
    assert model.config.num_labels == 1
    assert all("accuracy" in e and "margin" in e for e in trainer.state.log_history if "loss" in e)


def test_dpo(tiny_lm_dir, trainer_defaults, tmp_path):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    rows = [{"prompt": f"What is {i}+1?", "chosen": f" {i + 1}", "rejected": f" {i + 2} maybe"} for i in range(8)]
    args = DPOConfig(
        output_dir=str(tmp_path),
        max_steps=STEPS,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        max_length=32,
        beta=0.1,
        **trainer_defaults,
    )
    trainer = DPOTrainer(model=str(tiny_lm_dir), args=args, train_dataset=Dataset.from_list(rows))
    trainer.train()

    _assert_trained(trainer)
    last = [e for e in trainer.state.log_history if "loss" in e][-1]
    # After one update on the same kind of pairs the policy must prefer "chosen" a little.
    assert last["rewards/margins"] > 0


def test_grpo_standard_prompts_with_eval(tiny_lm_dir, trainer_defaults, tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    reward = LengthReward()
    rows = [{"prompt": f"Count to {i}:", "answer": str(i)} for i in range(8)]
    dataset = Dataset.from_list(rows)
    args = GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=STEPS,
        per_device_train_batch_size=4,  # counted in completions: 4 = 1 prompt x num_generations
        num_generations=4,
        max_completion_length=16,
        learning_rate=1e-3,
        eval_strategy="steps",
        eval_steps=STEPS,
        per_device_eval_batch_size=2,  # must be divisible by num_generations_eval
        num_generations_eval=2,
        **trainer_defaults,
    )
    trainer = GRPOTrainer(
        model=str(tiny_lm_dir),
        reward_funcs=reward,
        args=args,
        train_dataset=dataset,
        eval_dataset=dataset.select(range(2)),
    )
    trainer.train()

    _assert_trained(trainer)
    train_logs = [e for e in trainer.state.log_history if "loss" in e]
    assert all("rewards/length_reward/mean" in e for e in train_logs)
    assert any("eval_rewards/length_reward/mean" in e and "eval_reward" in e for e in trainer.state.log_history)
    assert reward.seen_completion_types == {"str"}
    assert "answer" in reward.seen_kwargs  # extra dataset columns reach the reward


def test_grpo_conversational_lora_saves_adapter(tiny_lm_dir, trainer_defaults, tmp_path):
    from datasets import Dataset
    from peft import PeftModel
    from trl import GRPOConfig, GRPOTrainer

    reward = LengthReward()
    rows = [
        {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Count to {i}"}]}
        for i in range(8)
    ]
    args = GRPOConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=STEPS,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=16,
        learning_rate=1e-3,
        **trainer_defaults,
    )
    trainer = GRPOTrainer(
        model=str(tiny_lm_dir),
        reward_funcs=reward,
        args=args,
        train_dataset=Dataset.from_list(rows),
        peft_config=_lora(),
    )
    trainer.train()

    _assert_trained(trainer)
    assert isinstance(trainer.model, PeftModel)
    assert reward.seen_completion_types == {"list"}  # conversational completions are message lists
    assert all("rewards/length_reward/mean" in e for e in trainer.state.log_history if "loss" in e)
    out = tmp_path / "adapter"
    trainer.save_model(str(out))
    assert (out / "adapter_config.json").is_file()
    assert (out / "adapter_model.safetensors").is_file()
    assert not (out / "model.safetensors").exists()  # only the adapter, not the full model
