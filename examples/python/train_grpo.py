"""GRPO on generated arithmetic problems through the Python API, for people who keep their own script.

    python examples/python/train_grpo.py                       # Qwen2.5-0.5B-Instruct (GPU advised)
    python examples/python/train_grpo.py model=/path/to/model trainer.max_steps=10
    python examples/python/train_grpo.py --smoke                # offline check: tiny model, 2 steps, ~20 s

Arguments are the same `key=value` overrides `rewardkit train --set` takes. The dict below has exactly the
shape of a YAML config (see examples/tutorial/grpo.yaml); `rewardkit.train.run` validates it the same way.
"""

from __future__ import annotations

import sys

from rewardkit.train import run

CONFIG = {
    "stage": "grpo",
    "model": "Qwen/Qwen2.5-0.5B-Instruct",
    "output_dir": "runs/python-grpo",
    "dataset": {
        "generator": "arithmetic",
        "n": 500,
        "params": {"a_range": [0, 99], "b_range": [0, 99], "template": "What is {a} {op} {b}?"},
        "system_prompt": "Solve the arithmetic problem. End your reply with the number alone.",
    },
    # Rewards in code: the same compose spec a YAML file would hold.
    "rewards": {
        "rewards": {
            "correct": {"use": "math_exact_match", "reference": "answer", "completion_view": "last_number"},
            "short": {"use": "brevity", "max_length": 200},
        },
        "combine": "correct + 0.2 * short",
    },
    "trainer": {
        "learning_rate": 1e-5,
        "num_generations": 4,
        "per_device_train_batch_size": 4,
        "max_completion_length": 64,
        "max_steps": 100,
        "logging_steps": 10,
        "save_strategy": "no",
    },
}


def main(overrides: list[str] | None = None, smoke: bool = False) -> list:
    """Train and print one line per stage (`smoke`: the `rewardkit train --smoke` run of this config)."""
    results = run(CONFIG, overrides, smoke=smoke)
    for r in results:
        print(f"{r.name}: {r.steps} steps, loss {r.train_loss}, model in {r.model}")
    return results


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if a != "--smoke"], smoke="--smoke" in sys.argv[1:])
