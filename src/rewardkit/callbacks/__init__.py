"""Training callbacks (lora_save, checkpoint_inference, best_checkpoint); `default_plugins.callbacks` registers them.

`link_callbacks(callbacks)` pairs each best_checkpoint with the checkpoint_inference of its sidecar, so that
their order in a Trainer's callbacks list does not matter (`rewardkit train` calls it on every stage).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from rewardkit.core.errors import ConfigError

C = TypeVar("C")  # the caller's callback type (a transformers.TrainerCallback), kept as given


def _by_sidecar(callbacks: list, cls: type[Any], name: str, why: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for cb in callbacks:
        if isinstance(cb, cls):
            key = os.path.normpath(cb.params.sidecar)
            if key in found:
                raise ConfigError(
                    f"two {name} callbacks use sidecar {cb.params.sidecar!r}: {why}.", hint="give each its own sidecar."
                )
            found[key] = cb
    return found


def link_callbacks(callbacks: Iterable[C]) -> list[C]:
    """Link every best_checkpoint to the checkpoint_inference of the same sidecar; returns the callbacks as a list.

    Call it once on the list handed to the Trainer, in any order: `Trainer(..., callbacks=link_callbacks([...]))`.
    A linked best_checkpoint receives each step's records in-process (see `BestCheckpointCallback.attach`);
    one without a partner scores the step files it finds. Other callbacks pass through untouched.

    >>> from rewardkit import get_callback
    >>> val = [{"id": 1, "prompt": "2+2=", "answer": "4"}]
    >>> best, inference = link_callbacks([
    ...     get_callback("best_checkpoint", spec={"rewards": {"em": {"use": "exact_match"}}}),
    ...     get_callback("checkpoint_inference", dataset=val, reference_columns=["answer"])])
    >>> best.partner is inference
    True
    """
    callbacks = list(callbacks)
    best_mod, inference_mod = sys.modules.get(f"{__name__}.best"), sys.modules.get(f"{__name__}.inference")
    if best_mod is None or inference_mod is None:  # no instance exists before its module is imported: nothing
        return callbacks  # to link, and importing them here would pull in transformers for nothing
    producers = _by_sidecar(
        callbacks,
        inference_mod.CheckpointInferenceCallback,
        "checkpoint_inference",
        "they would overwrite each other's step_N.json files",
    )
    bests = _by_sidecar(
        callbacks, best_mod.BestCheckpointCallback, "best_checkpoint", "both would write its scores.json"
    )
    for key, best in bests.items():
        if key in producers:
            best.attach(producers[key])
    return callbacks
