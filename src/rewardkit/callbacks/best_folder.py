"""What `best_checkpoint` copies to best/: the model files of a lora_save folder or a checkpoint-N folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from rewardkit.core.fileio import atomic_replace_dir, make_temp_dir

# Trainer files of a checkpoint-N folder that are not the model: left out when copying it to best/.
TRAINER_FILES = (
    "optimizer",
    "scheduler",
    "scaler",
    "rng_state",
    "trainer_state",
    "training_args",
    "global_step",
    "latest",
    "zero_to_fp32",
)
# A checkpoint-N folder best/ can be loaded from on one process holds one of these.
WEIGHT_FILES = (
    "adapter_model.safetensors",
    "adapter_model.bin",
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


def has_full_weights(folder: Path) -> bool:
    """Whether `folder` holds weights peft/transformers load on one process (not only FSDP/ZeRO-3 shards)."""
    return any((folder / name).is_file() for name in WEIGHT_FILES)


def copy_model(source: Path, target: Path) -> None:
    """Replace `target` with `source`'s model files (trainer state and hidden files left out), atomically."""
    tmp = make_temp_dir(target.parent, f".{target.name}.")
    try:
        shutil.copytree(
            source,
            tmp,
            dirs_exist_ok=True,
            ignore=lambda d, names: [n for n in names if n.startswith(TRAINER_FILES) or n.startswith(".")],
        )
        atomic_replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
