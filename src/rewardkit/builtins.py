"""rewardkit's own rewards, views and callbacks, registered through the same hooks as any plugin."""

from __future__ import annotations

from . import tokenizers, views
from .hookspecs import hookimpl
from .rewards.bertscore_rewards import BERTScore
from .rewards.format_rewards import FormatRegex
from .rewards.length_rewards import Brevity
from .rewards.math_rewards import MathExactMatch
from .rewards.rouge_rewards import Rouge1
from .rewards.text_rewards import ExactMatch


@hookimpl
def register_rewards(register):
    for reward in (MathExactMatch, ExactMatch, Brevity, FormatRegex, Rouge1, BERTScore):
        register(reward.name, reward)


@hookimpl
def register_views(register):
    register("full", views.Full)
    register("boxed", views.Boxed)
    register("last_number", views.LastNumber)
    register("regex", views.Regex)
    register("after", views.After)
    register("before", views.Before)
    register("after_think", views.AfterThink)


@hookimpl
def register_tokenizers(register):
    for name, tokenizer in tokenizers.BUILTIN_TOKENIZERS.items():
        register(name, tokenizer)


@hookimpl
def register_callbacks(register):
    # Lazy "module:attr" factories: the callback modules import transformers (and torch); params stay light.
    from .callbacks import params

    register("lora_save", "rewardkit.callbacks.lora:LoRASaveCallback", params=params.LoRASaveParams,
             summary="Save only the adapter (and tokenizer) at each save to a folder rotation never deletes.")
    register("checkpoint_inference", "rewardkit.callbacks.inference:CheckpointInferenceCallback",
             params=params.CheckpointInferenceParams,
             summary="Generate a validation set with the live model at each evaluation/save into step_N.json.")
    register("best_checkpoint", "rewardkit.callbacks.best:BestCheckpointCallback",
             params=params.BestCheckpointParams,
             summary="Score each step's inference file, feed eval_<metric> to the Trainer, copy the best adapter.")
