"""Ranges of `trainer:` values, checked when the config loads (before any model or heavy import).

TRL and transformers check few of these, and late: `num_generations: 0` or `per_device_train_batch_size: 0` failed
after the model loaded with a traceback, `learning_rate: -1` trained, `seed: 2**32` broke numpy's seeding. Only
numbers are judged here (a wrong type is the type check's, `stages.check_trainer_values`); keys not listed have no
range rewardkit knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Bound:
    """An allowed range: low <= value (low < value when low_open), value <= high (< when high_open)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    why: str = ""

    def allows(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def text(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'above' if self.low_open else 'at least'} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'below' if self.high_open else 'at most'} {_number(self.high)}")
        return " and ".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**63 else f"{value:g}"


COUNT = Bound(1)
POSITIVE = Bound(0, low_open=True)
NOT_NEGATIVE = Bound(0)
FRACTION = Bound(0, 1)
SEED = Bound(0, 2**32 - 1, why="numpy seeds with 32 bits")

BOUNDS: dict[str, Bound] = {
    "per_device_train_batch_size": COUNT,
    "per_device_eval_batch_size": COUNT,
    "gradient_accumulation_steps": COUNT,
    "num_generations": Bound(2, why="GRPO compares the completions of one prompt"),
    "steps_per_generation": COUNT,
    "generation_batch_size": COUNT,
    "num_iterations": COUNT,
    "max_completion_length": COUNT,
    "max_prompt_length": COUNT,
    "max_length": COUNT,
    "num_train_epochs": POSITIVE,
    "max_steps": Bound(-1, why="-1: train by epochs"),
    "logging_steps": POSITIVE,
    "save_steps": POSITIVE,
    "eval_steps": POSITIVE,
    "learning_rate": NOT_NEGATIVE,
    "weight_decay": NOT_NEGATIVE,
    "warmup_steps": NOT_NEGATIVE,
    "warmup_ratio": FRACTION,
    "max_grad_norm": NOT_NEGATIVE,
    "adam_beta1": Bound(0, 1, high_open=True),
    "adam_beta2": Bound(0, 1, high_open=True),
    "adam_epsilon": POSITIVE,
    "seed": SEED,
    "data_seed": SEED,
    "temperature": POSITIVE,
    "top_p": Bound(0, 1, low_open=True),
    "min_p": FRACTION,
    "repetition_penalty": POSITIVE,
    "beta": NOT_NEGATIVE,
    "epsilon": POSITIVE,  # GRPO's clip range: negative clamps every ratio to a constant and trains on nothing
    "epsilon_high": POSITIVE,
    "delta": POSITIVE,
    "top_k": NOT_NEGATIVE,
    "dataloader_num_workers": NOT_NEGATIVE,
}


# GRPO's text settings TRL checks only mid-run (a ValueError traceback at the first step that reads them):
# {key: values TRL accepts}. tests/train/test_config.py compares them with the values GRPOTrainer's source tests.
GRPO_CHOICES: dict[str, tuple[Any, ...]] = {
    "loss_type": ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"),
    "scale_rewards": ("group", "batch", "none", True, False),
    "importance_sampling_level": ("token", "sequence"),
}


def choice_problem(stage: str, trainer: dict[str, Any]) -> str | None:
    """The first `trainer.<key>: value` that is none of the values TRL accepts, as one sentence, or None."""
    if stage != "grpo":
        return None
    for key, choices in GRPO_CHOICES.items():
        if key in trainer and not any(trainer[key] is c or (type(c) is str and trainer[key] == c) for c in choices):
            listed = ", ".join(repr(c) if isinstance(c, str) else str(c).lower() for c in choices)
            return f"trainer.{key} is {trainer[key]!r}; GRPO accepts {listed}"
    return None


def bound_problem(trainer: dict[str, Any]) -> str | None:
    """The first `trainer.<key>: value` outside its range, as one sentence without an end mark, or None."""
    for key, value in trainer.items():
        bound = BOUNDS.get(key)
        if bound is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not bound.allows(value):
            shown = _number(value)
            why = f" ({bound.why})" if bound.why else ""
            return f"trainer.{key} is {shown}; it must be {bound.text()}{why}"
    return None
