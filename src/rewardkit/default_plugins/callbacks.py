"""The built-in Trainer callbacks (`rewardkit.callbacks`).

The callback classes import transformers (and torch): they are registered as lazy "module:attr" factories with
their light `params` models, so `rewardkit list` and validation never import torch.
"""

from __future__ import annotations

from rewardkit.callbacks import params
from rewardkit.core.hookspecs import Register, hookimpl


@hookimpl
def register_callbacks(register: Register) -> None:
    register(
        "lora_save",
        "rewardkit.callbacks.lora:LoRASaveCallback",
        params=params.LoRASaveParams,
        summary="Save only the adapter (and tokenizer) at each save to a folder rotation never deletes.",
    )
    register(
        "checkpoint_inference",
        "rewardkit.callbacks.inference:CheckpointInferenceCallback",
        params=params.CheckpointInferenceParams,
        summary="Generate a validation set with the live model at each evaluation/save into step_N.json.",
    )
    register(
        "best_checkpoint",
        "rewardkit.callbacks.best:BestCheckpointCallback",
        params=params.BestCheckpointParams,
        summary="Score each step's inference file, feed eval_<metric> to the Trainer, copy the best adapter.",
    )
