"""Helpers shared by the callbacks: epoch numbering, process info, the sharded-training check, and the
in-process hand-off from `checkpoint_inference` to `best_checkpoint` (which makes their order irrelevant)."""

from __future__ import annotations

import logging
import math
import weakref
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..validation import validate

logger = logging.getLogger("rewardkit.callbacks")

# Live best_checkpoint callbacks; checkpoint_inference notifies them when a step's records are ready.
_listeners: weakref.WeakSet = weakref.WeakSet()
# Live checkpoint_inference callbacks, so best_checkpoint can tell whether one feeds its metric.
_producers: weakref.WeakSet = weakref.WeakSet()


def build_params(model: type, params: dict, name: str) -> Any:
    """Validate callback params (same errors as `rewardkit.get_callback`)."""
    return validate(model, params, f"callback {name!r}")


def epoch_index(epoch: float | None) -> int:
    """1-based number of the epoch in progress or just finished; float noise (0.9999999, 2.0000001) ignored."""
    if epoch is None or epoch <= 0:
        return 1
    return max(1, math.ceil(round(epoch, 6)))


def adapter_folder(layout: str, step: int, epoch: float | None) -> str:
    """lora_save's folder name for a save at `step` / `epoch`."""
    return f"step_{step}" if layout == "step" else f"epoch_{epoch_index(epoch)}"


def process_info() -> tuple[int, int]:
    """(process index, number of processes); (0, 1) outside a distributed run."""
    from accelerate import PartialState

    state = PartialState()
    return state.process_index, state.num_processes


def broadcast_from_main(value: Any) -> Any:
    """`value` of process 0 on every process (a no-op with one process)."""
    _, count = process_info()
    if count == 1:
        return value
    from accelerate.utils import broadcast_object_list

    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


def sharded_training(args: Any) -> str | None:
    """'FSDP' or 'DeepSpeed ZeRO-3' when parameters are sharded across ranks, else None."""
    from accelerate import PartialState
    from accelerate.utils import DistributedType

    if getattr(args, "fsdp", None) or PartialState().distributed_type == DistributedType.FSDP:
        return "FSDP"
    try:
        from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled
    except ImportError:  # pragma: no cover - old transformers
        return None
    return "DeepSpeed ZeRO-3" if is_deepspeed_zero3_enabled() else None


def refuse_sharded(args: Any, name: str, hint: str) -> None:
    """Raise at train begin when parameters are sharded (a rank-local model has only its shard)."""
    kind = sharded_training(args)
    if kind is not None:
        raise ConfigError(f"callback {name!r} does not support {kind}: each rank holds only a shard of the "
                          f"parameters. Hint: {hint}")


def has_adapter(model: Any) -> bool:
    """True for a peft PeftModel or a transformers model with a loaded PEFT adapter."""
    if getattr(model, "_hf_peft_config_loaded", False):
        return True
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)


def resolve_dir(args: Any, value: str | None, default: str) -> Path:
    """A user-given folder (absolute or relative to the cwd), else `<args.output_dir>/<default>`."""
    return Path(value) if value else Path(args.output_dir) / default


def sidecar_dir(args: Any, sidecar: str) -> Path:
    """`<args.output_dir>/<sidecar>`, refusing names that leave the output folder."""
    from ..selection import safe_child

    return safe_child(args.output_dir, sidecar, "sidecar")
