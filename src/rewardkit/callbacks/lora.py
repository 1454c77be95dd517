"""`lora_save`: keep each checkpoint's adapter in a folder that checkpoint rotation never touches."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from rewardkit.callbacks.common import (
    ADAPTER_MARKER,
    WarnsOnce,
    adapter_folder,
    adapter_marker_step,
    build_params,
    check_dirs,
    has_adapter,
    logger,
    record_root,
    resolve_dir,
    write_adapter_marker,
)
from rewardkit.callbacks.params import LoRASaveParams
from rewardkit.callbacks.sharded import gathered_state_dict, sharded_training
from rewardkit.core.distributed import process_info
from rewardkit.core.errors import ConfigError, DataError
from rewardkit.core.fileio import atomic_replace_dir, make_temp_dir
from rewardkit.core.write_errors import writing

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments


class LoRASaveCallback(TrainerCallback, WarnsOnce):
    """Save only the adapter (and tokenizer) on every save to <output_dir>/step_N or epoch_E, atomically.

    Folders live outside `checkpoint-N/`, so `save_total_limit` rotation never deletes them. Writes happen on
    the main process only. `output_dir` is relative to the run's `args.output_dir` (default `adapters`), or an
    explicit absolute path; `..` climbing out of the run is refused. Each folder carries a `.rewardkit-adapter`
    marker (its step): best_checkpoint's top-k pruning deletes only marked folders, and lora_save itself
    refuses to replace a same-named folder it did not write. A model without a PEFT adapter is saved whole
    (with a one-time warning) unless `no_adapter="error"`. `layout="epoch"` names folders epoch_E (E = 1-based
    epoch in progress), so pair it with `save_strategy="epoch"`: several saves within one epoch replace each
    other. Under FSDP / ZeRO-3 the adapter is gathered to full tensors on every rank's call and saved once by the
    main process, so the folder loads with peft on one process.

    Example:
    >>> cb = LoRASaveCallback(layout="epoch")  # or rewardkit.get_callback("lora_save", layout="epoch")
    """

    Params = LoRASaveParams

    takes_validated_params = True  # the builder hands over the validated LoRASaveParams

    def __init__(self, params: LoRASaveParams | None = None, /, **kwargs: object) -> None:
        self.params = build_params(LoRASaveParams, params, kwargs, "lora_save")
        check_dirs(self.params, "lora_save", run_dirs=("output_dir",))
        self.saved: list[Path] = []

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None, **kwargs: object
    ) -> None:
        if model is not None and not has_adapter(model) and self.params.no_adapter == "error":
            raise ConfigError(
                "callback 'lora_save': the model has no PEFT adapter (no_adapter='error').",
                hint="pass peft_config= to the trainer, or no_adapter='save_full' to save the full model.",
            )
        strategy = getattr(args.save_strategy, "value", args.save_strategy)
        if self.params.layout == "epoch" and strategy != "epoch":
            self._warn_once(
                "layout",
                "lora_save layout='epoch' with save_strategy != 'epoch': saves within one "
                "epoch overwrite the same epoch_E folder. Hint: save_strategy='epoch' or layout='step'.",
            )

    def on_save(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        processing_class: Any = None,
        **kwargs: object,
    ) -> None:
        if model is None:
            return
        state_dict = None
        if process_info()[1] > 1 and sharded_training(args, model) is not None:  # every rank joins the gather
            state_dict = gathered_state_dict(model, state.is_world_process_zero)
        if not state.is_world_process_zero:
            return
        root = resolve_dir(args, self.params.output_dir, "adapters", "callback 'lora_save': output_dir")
        final = root / adapter_folder(self.params.layout, state.global_step, state.epoch)
        if final.is_dir() and adapter_marker_step(final) is None:
            raise DataError(
                f"lora_save: {final} exists and was not written by rewardkit (no {ADAPTER_MARKER} "
                "marker); refusing to replace it.",
                hint="move it away, or point lora_save.output_dir at a folder of its own.",
            )
        if not has_adapter(model):
            self._warn_once(
                "full",
                f"lora_save: the model has no PEFT adapter, so the FULL model is saved to "
                f"{root}/ at every save. Hint: pass peft_config= to the trainer, or "
                "no_adapter='error' to refuse.",
            )
        with writing(final, "lora_save"):  # a full disk (SafetensorError), a read-only folder: one line naming it
            # inside the run (a relative output_dir): never replaced through a link; an absolute folder elsewhere
            # is the user's choice of place and keeps its own record of what lora_save wrote there
            inside = record_root(args, root)
            tmp = make_temp_dir(root, f".{final.name}.", inside=inside)
            try:
                # PeftModel / loaded adapter: adapter_config.json + adapter weights only; sharded: gathered tensors
                model.save_pretrained(tmp, **({} if state_dict is None else {"state_dict": state_dict}))
                if self.params.save_tokenizer and processing_class is not None:
                    processing_class.save_pretrained(tmp)
                write_adapter_marker(tmp, state.global_step, state.epoch)  # inside: it appears with the folder
                atomic_replace_dir(tmp, final, inside=inside)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        self.saved.append(final)
        logger.info("lora_save: step %d -> %s", state.global_step, final)
