"""The constructor arguments of each stage's TRL config class, read from TRL's source without importing it.

`trainer:` keys are checked against them before torch, transformers or trl load (seconds, tens under load); when
the source is not in the expected shape the classes are imported instead (`core.module_source`).
"""

from __future__ import annotations

import dataclasses

from rewardkit.core.module_source import dataclass_fields

# stage -> (module, TRL config class); tests/train/test_trl_fields.py compares the fields with the imported classes.
CONFIG_CLASSES = {
    "sft": ("trl.trainer.sft_config", "SFTConfig"),
    "rm": ("trl.trainer.reward_config", "RewardConfig"),
    "dpo": ("trl.trainer.dpo_config", "DPOConfig"),
    "grpo": ("trl.trainer.grpo_config", "GRPOConfig"),
}


def read_fields(stage: str) -> dict[str, str] | None:
    """{argument: annotation source} of the stage's TRL config class, from the source alone (None: unreadable)."""
    module, name = CONFIG_CLASSES[stage]
    return dataclass_fields(module, name)


def config_fields(stage: str) -> tuple[str, list[str]]:
    """(class name, constructor arguments) of the stage's TRL config class: read light, else imported."""
    module, name = CONFIG_CLASSES[stage]
    fields = read_fields(stage)
    if fields is not None:
        return name, list(fields)
    import trl

    return name, [f.name for f in dataclasses.fields(getattr(trl, name)) if f.init]
