"""GRPO + composed rewards + the three callbacks; launched by tests/train/test_multiprocess.py under 2 processes."""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rewardkit import compose, get_callback  # noqa: E402
from rewardkit.rewards.base import Reward  # noqa: E402


class CallLog(Reward):
    """Records, per rank, how many completions each call received (always 1.0)."""

    name = "call_log"

    def score_batch(self, completions, references, **context):
        rank = os.environ.get("RANK", "0")
        with open(os.path.join(sys.argv[2], f"reward_calls_rank{rank}.jsonl"), "a") as f:
            f.write(json.dumps({"n": len(completions), "prompts": context.get("prompts")}) + "\n")
        return [1.0] * len(completions)


def main() -> None:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model_dir, out = sys.argv[1], sys.argv[2]
    train = [{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(4) for b in range(4)]
    val = [{"id": f"v{i}", "prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(7)]
    composed = compose(
        {
            "rewards": {"acc": {"use": "math_exact_match"}, "short": {"use": "brevity", "max_length": 16}},
            "combine": "acc + 0.5*short",
        }
    )
    funcs, weights = composed.to_trl()
    funcs = funcs + [CallLog()]
    weights = weights + [0.0]
    callbacks = [
        get_callback("lora_save"),
        get_callback("checkpoint_inference", dataset=val, reference_columns=["answer"], max_new_tokens=6, batch_size=2),
        get_callback(
            "best_checkpoint",
            spec={
                "rewards": {"acc": {"use": "math_exact_match"}, "short": {"use": "brevity", "max_length": 16}},
                "combine": "acc + short",
            },
        ),
    ]
    from peft import LoraConfig

    args = GRPOConfig(
        output_dir=out,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        reward_weights=weights,
        report_to="none",
        use_cpu=True,
        bf16=False,
        fp16=False,
        activation_checkpointing=False,
        logging_steps=1,
        disable_tqdm=True,
        max_steps=4,
        seed=0,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        per_device_eval_batch_size=2,
        num_generations_eval=2,
        metric_for_best_model="eval_score",
        learning_rate=1e-3,
    )
    trainer = GRPOTrainer(
        model=model_dir,
        reward_funcs=funcs,
        args=args,
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(val[:4]),
        callbacks=callbacks,
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    trainer.train()
    print(
        f"RANK {os.environ.get('RANK')} DONE step={trainer.state.global_step} "
        f"best={trainer.state.best_model_checkpoint}",
        flush=True,
    )
    from rewardkit.train import finish_distributed

    finish_distributed()  # exiting with a live gloo group can SIGABRT at interpreter shutdown


if __name__ == "__main__":
    main()
