"""What `best_checkpoint` keeps on disk: best/ (the model files of a lora_save folder or a checkpoint-N folder)
and the lora_save folders inside top_k."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from rewardkit.callbacks.best_state import BestState
from rewardkit.callbacks.common import (
    ADAPTER_MARKER,
    adapter_folder,
    adapter_marker_step,
    logger,
    output_dir,
    record_root,
    scored_step,
)
from rewardkit.core import written
from rewardkit.core.fileio import atomic_replace_dir, make_temp_dir
from rewardkit.core.paths import safe_child
from rewardkit.selection.checkpoints import CheckpointScore, ranked

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


def copy_model(source: Path, target: Path, inside: str | Path | None = None) -> None:
    """Replace `target` with `source`'s model files (trainer state and hidden files left out), atomically;
    `inside`: the run folder, never replaced through a link."""
    tmp = make_temp_dir(target.parent, f".{target.name}.", inside=inside)
    try:
        shutil.copytree(
            source,
            tmp,
            dirs_exist_ok=True,
            ignore=lambda d, names: [n for n in names if n.startswith(TRAINER_FILES) or n.startswith(".")],
        )
        atomic_replace_dir(tmp, target, inside=inside)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class BestFolder(BestState):
    """Mixin for best_checkpoint: copy the policy's pick to best/, prune lora_save folders outside top_k."""

    def _adapter_source(self, args: Any, best: CheckpointScore) -> Path | None:
        """lora_save's folder holding the best step (its marker says which step), else the Trainer's checkpoint-N."""
        for layout in ("step", "epoch"):
            folder = self._adapters(args) / adapter_folder(layout, scored_step(best), best.epoch)
            if folder.is_dir() and adapter_marker_step(folder) == best.step:
                return folder
        checkpoint = Path(args.output_dir) / f"checkpoint-{best.step}"
        if checkpoint.is_dir() and not has_full_weights(checkpoint):
            # FSDP with a sharded state dict writes pytorch_model_fsdp_*/ shards, which peft cannot load alone
            self._warn_once(
                ("sharded", best.step),
                f"best_checkpoint: {checkpoint} holds no full adapter or model "
                "weights (a sharded FSDP / ZeRO-3 save?). Hint: add lora_save, which gathers the "
                "adapter and saves it whole.",
            )
            return None
        return checkpoint if checkpoint.is_dir() else None

    def _sync_best(self, args: Any) -> None:
        self._decide()
        best = self.pick
        target = safe_child(args.output_dir, self.params.best_dir, "best_dir")
        if best is None or (self.best_dir_state and self.best_dir_state.get("step") == best.step and target.is_dir()):
            return
        source = self._adapter_source(args, best)
        if source is None:
            self._warn_once(
                ("nosource", best.step),
                f"best_checkpoint: the best step {best.step} has no saved "
                "adapter (no lora_save folder, no checkpoint-N). Hint: save at every evaluation "
                "(save_steps = eval_steps).",
            )
            return
        copy_model(source, target, inside=output_dir(args))
        self.best_dir_state = {"path": str(target), "step": best.step, "source": str(source)}
        logger.info("best_checkpoint: best is step %d; copied %s -> %s", best.step, source, target)

    def _prune(self, args: Any) -> None:
        """Delete lora_save folders holding a scored step outside the top k; never an unmarked folder."""
        k = self.params.top_k
        if k is None:
            return
        order = ranked(list(self.checkpoints.values()), self.params.aggregate, self.params.greater_is_better)
        dropped = {c.step for c in order[k:]}
        adapters = self._adapters(args)
        for c in order[k:]:
            for layout in ("step", "epoch"):
                folder = adapters / adapter_folder(layout, scored_step(c), c.epoch)
                if not folder.is_dir():
                    continue
                held = adapter_marker_step(folder)
                if held is None:
                    self._warn_once(
                        ("unmarked", str(folder)),
                        f"best_checkpoint: top_k={k} leaves {folder} "
                        f"alone: it has no {ADAPTER_MARKER} marker, so lora_save did not write it. "
                        f"Hint: move it out of {adapters} if it is not needed.",
                    )
                elif held in dropped:  # an epoch_E folder may hold a later step than c: keep it if that one stays
                    kept = written.remove_recorded(record_root(args, folder), [folder])  # only what the run wrote
                    if kept:
                        self._warn_once(
                            ("kept", str(folder)),
                            f"best_checkpoint: top_k={k} keeps {len(kept)} file(s) in {folder} this run did not "
                            f"write (first: {kept[0].path}). Hint: move them out if the folder is not needed.",
                        )
                    logger.info("best_checkpoint: top_k=%d, removed %s", k, folder)
