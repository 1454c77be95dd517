"""Helpers shared by the callbacks: parameters, epoch numbering, folders (kept inside the run), the marker
of adapter folders rewardkit wrote, the rank-0 broadcast."""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardkit.core import written
from rewardkit.core.distributed import process_info
from rewardkit.core.errors import ConfigError, DataError
from rewardkit.core.fileio import atomic_write_json, read_json
from rewardkit.core.paths import run_path, safe_child
from rewardkit.core.validation import M, accept

if TYPE_CHECKING:
    from pydantic import BaseModel
    from transformers import TrainingArguments

    from rewardkit.selection.checkpoints import CheckpointScore

logger = logging.getLogger("rewardkit.callbacks")

# Written into every folder lora_save creates: pruning and replacing touch only folders that carry it.
ADAPTER_MARKER = ".rewardkit-adapter"


def build_params(model: type[M], given: M | None, params: dict[str, object], name: str) -> M:
    """The builder's validated `given`, or `params` validated now (same errors as `rewardkit.get_callback`)."""
    return accept(model, given, params, f"callback {name!r}")


def epoch_index(epoch: float | None) -> int:
    """1-based number of the epoch in progress or just finished; float noise (0.9999999, 2.0000001) ignored."""
    if epoch is None or epoch <= 0:
        return 1
    return max(1, math.ceil(round(epoch, 6)))


def scored_step(checkpoint: CheckpointScore) -> int:
    """The step of a checkpoint the callback scored itself (state.global_step); only offline files lack one."""
    if checkpoint.step is None:
        raise DataError(
            f"checkpoint {checkpoint.name!r} has no step",
            owner="callback 'best_checkpoint'",
            hint="its scores record is damaged: delete the record in the inference folder to rescore the files.",
        )
    return checkpoint.step


def adapter_folder(layout: str, step: int, epoch: float | None) -> str:
    """lora_save's folder name for a save at `step` / `epoch`."""
    return f"step_{step}" if layout == "step" else f"epoch_{epoch_index(epoch)}"


def broadcast_from_main(value: Any) -> Any:
    """`value` of process 0 on every process (a no-op with one process)."""
    _, count = process_info()
    if count == 1:
        return value
    from accelerate.utils import broadcast_object_list

    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


def has_adapter(model: object) -> bool:
    """True for a peft PeftModel or a transformers model with a loaded PEFT adapter."""
    if getattr(model, "_hf_peft_config_loaded", False):
        return True
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)


def check_dirs(
    params: BaseModel, owner: str, relative_only: tuple[str, ...] = (), run_dirs: tuple[str, ...] = ()
) -> None:
    """Refuse bad folder parameters at construction, before any training: `relative_only` ones must be plain
    names inside the run, `run_dirs` ones inside it unless absolute."""
    root = "the run folder (args.output_dir)"  # not known yet: only the names are checked, the paths dropped
    for name in relative_only:
        safe_child(root, getattr(params, name), f"callback {owner!r}: {name}")
    for name in run_dirs:
        if getattr(params, name) is not None:
            run_path(root, getattr(params, name), f"callback {owner!r}: {name}")


def output_dir(args: TrainingArguments) -> str:
    """`args.output_dir`: TrainingArguments fills it in (default trainer_output); hand-made args may lack it."""
    if args.output_dir is None:
        raise ConfigError(
            "the Trainer's args.output_dir is not set",
            hint="pass output_dir= to the trainer's config: the callbacks keep their folders inside it.",
        )
    return args.output_dir


def resolve_dir(args: TrainingArguments, value: str | None, default: str, what: str) -> Path:
    """A folder parameter: an absolute path as given, a relative one under args.output_dir (never above it),
    None the run's `<args.output_dir>/<default>`."""
    return run_path(output_dir(args), value, what) if value else Path(output_dir(args)) / default


def record_root(args: TrainingArguments, folder: Path) -> Path:
    """The folder whose record of what the run wrote (core/written.py) holds `folder`: the run's output_dir when
    `folder` is inside it, else `folder` itself (a callback's absolute folder elsewhere keeps its own record)."""
    out = Path(output_dir(args))
    return out if written.relative(out, folder) is not None else folder


def sidecar_dir(args: TrainingArguments, sidecar: str) -> Path:
    """`<args.output_dir>/<sidecar>`, refusing names that leave the output folder."""
    return safe_child(output_dir(args), sidecar, "sidecar")


def write_adapter_marker(folder: Path, step: int, epoch: float | None) -> None:
    """Mark `folder` as an adapter lora_save wrote, with the step it holds (epoch_E folders change hands)."""
    atomic_write_json(folder / ADAPTER_MARKER, {"step": step, "epoch": epoch})


def adapter_marker_step(folder: Path) -> int | None:
    """The step in `folder`'s marker; None when the folder is not one rewardkit wrote (no or a bad marker)."""
    marker = folder / ADAPTER_MARKER
    if not marker.is_file():
        return None
    try:
        step = read_json(marker).get("step")
    except (DataError, AttributeError):  # unreadable, or not an object: not a marker of ours
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


class WarnsOnce:
    """Mixin for callbacks: `_warn_once(key, message)` warns the first time this instance sees `key`."""

    def _warn_once(self, key: Any, message: str) -> None:
        warned = self.__dict__.setdefault("_warned", set())
        if key not in warned:
            warned.add(key)
            warnings.warn(message, UserWarning, stacklevel=3)
