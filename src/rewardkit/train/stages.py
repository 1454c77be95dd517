"""Building the TRL config, PEFT/quantization configs and the trainer of one stage."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardkit.api import get_callback
from rewardkit.callbacks import link_callbacks
from rewardkit.core.errors import ConfigError
from rewardkit.core.fileio import atomic_replace_dir, make_temp_dir
from rewardkit.core.specs import read_chat_template
from rewardkit.core.validation import validate
from rewardkit.core.write_errors import writing
from rewardkit.train.config import QuantizationSpec, StageConfig
from rewardkit.train.eval_plan import plan
from rewardkit.train.preflight import loading
from rewardkit.train.trainer_bounds import GRPO_CHOICES
from rewardkit.train.trl_fields import scalar_type

if TYPE_CHECKING:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig, Trainer, TrainingArguments

    from rewardkit.composition.composed import Composed

# stage -> (TRL config class, TRL trainer class), imported lazily by name.
TRL_CLASSES = {
    "sft": ("SFTConfig", "SFTTrainer"),
    "rm": ("RewardConfig", "RewardTrainer"),
    "dpo": ("DPOConfig", "DPOTrainer"),
    "grpo": ("GRPOConfig", "GRPOTrainer"),
}


def trl_classes(stage: str) -> tuple[type, type]:
    """The TRL config and trainer classes of a stage."""
    import trl

    config_name, trainer_name = TRL_CLASSES[stage]
    return getattr(trl, config_name), getattr(trl, trainer_name)


def cuda_available() -> bool:
    """Whether a CUDA device is usable (bitsandbytes quantization needs one)."""
    import torch

    return torch.cuda.is_available()


def check_trainer_values(stage: StageConfig, where: str) -> None:
    """Every `trainer:` value must fit its field's type (the dataclass itself only fails later, mid-training)."""
    import typing

    from pydantic import ConfigDict, Field, TypeAdapter, create_model

    config_cls, _ = trl_classes(stage.stage)
    hints = typing.get_type_hints(config_cls)
    fields: dict[str, Any] = {}  # Any: create_model's **field_definitions also meets its typed __module__ etc.
    for key in stage.trainer:
        if stage.stage == "grpo" and key in GRPO_CHOICES:  # checked against TRL's values when the config loaded
            continue
        try:
            TypeAdapter(hints[key])
        except Exception:  # a type pydantic cannot describe: left to the dataclass
            continue
        # a number or bool as given (the dataclass converts nothing: the text "false" was true)
        fields[key] = (hints[key], Field(..., strict=True) if scalar_type(hints[key]) else ...)
    # Lax, like TRL's own parsing ("steps" for an enum); the shared validator gives the error its usual shape.
    model = create_model(config_cls.__name__, __config__=ConfigDict(arbitrary_types_allowed=True), **fields)
    validate(
        model,
        {k: stage.trainer[k] for k in fields},
        f"{where}: stage {stage.label!r}",
        prefix="trainer",
        hint=f"fix the value (see the TRL docs of {config_cls.__name__}).",
    )


def check_quantization(stage: StageConfig, where: str) -> None:
    """Quantized loading needs CUDA; fail before any weights are read."""
    if stage.quantization is not None and not cuda_available():
        raise ConfigError(
            f"{where}: stage {stage.label!r}: quantization ({stage.quantization.bits}-bit, "
            "bitsandbytes) needs a CUDA GPU and none is available.",
            hint="set quantization: null (or --set quantization=null) to train in full precision on this machine.",
        )


def on_terminal() -> bool:
    """Whether stderr (where progress bars go) is a terminal; piped output gets one line per event instead."""
    import sys

    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def build_args(stage: StageConfig, where: str, extra: dict | None = None) -> TrainingArguments:
    """The stage's TRL config object (report_to 'none' and, without CUDA, fp32 unless set; progress bars only
    on a terminal)."""
    config_cls, _ = trl_classes(stage.stage)
    values: dict[str, Any] = {"report_to": "none", "disable_tqdm": not on_terminal()}
    if not cuda_available():
        if "bf16" not in stage.trainer and "fp16" not in stage.trainer:
            values.update(bf16=False, fp16=False)  # TRL defaults bf16=True, which CPUs run slowly or not at all
        values["dataloader_pin_memory"] = False  # pinning needs an accelerator; on CPU it only warns
        # Without use_cpu, accelerate under torchrun on a CPU-only machine silently runs N independent
        # single-process trainings (each rank merges and saves alone); with it, ranks join one gloo group.
        values["use_cpu"] = True
    values.update(stage.trainer)
    values.update(extra or {})
    values["output_dir"] = stage.output_dir
    try:
        return config_cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{where}: stage {stage.label!r}: {config_cls.__name__} rejected the trainer arguments: {exc}.",
            hint="fix the named trainer.* value.",
        ) from None


def lora_config(stage: StageConfig) -> LoraConfig | None:
    """A peft LoraConfig with the task type the stage needs, or None."""
    if stage.peft is None:
        return None
    from peft import LoraConfig

    p = stage.peft
    return LoraConfig(
        r=p.r,
        lora_alpha=p.alpha,
        lora_dropout=p.dropout,
        target_modules=p.target_modules,
        bias=p.bias,
        modules_to_save=p.modules_to_save,
        task_type="SEQ_CLS" if stage.stage == "rm" else "CAUSAL_LM",
    )


def quantization_config(spec: QuantizationSpec | None) -> BitsAndBytesConfig | None:
    """A transformers BitsAndBytesConfig, or None."""
    if spec is None:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    if spec.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=spec.quant_type,
        bnb_4bit_use_double_quant=spec.double_quant,
        bnb_4bit_compute_dtype=getattr(torch, spec.compute_dtype),
    )


def build_callbacks(stage: StageConfig, where: str, substitutions: dict[str, Any]) -> list:
    """Callback instances from `[{name: ..., **params}]`; '@eval' / '@rewards' values are substituted."""
    out = []
    for i, entry in enumerate(stage.callbacks):
        params = {k: v for k, v in entry.items() if k != "name"}
        for key, value in params.items():
            if isinstance(value, str) and value.startswith("@") and value in substitutions:
                if substitutions[value] is None:
                    raise ConfigError(
                        f"{where}: stage {stage.label!r}: callbacks[{i}].{key}={value!r} but the "
                        "stage has no eval set.",
                        hint="set dataset.eval_size, eval_file or eval_split.",
                    )
                params[key] = substitutions[value]
        try:
            out.append(get_callback(entry["name"], **params))
        except ConfigError as exc:
            raise exc.within(where, f"stage {stage.label!r}", f"callbacks[{i}] ({entry['name']})") from None
    try:
        return link_callbacks(out)  # best_checkpoint hears from the checkpoint_inference of its sidecar
    except ConfigError as exc:
        raise exc.within(where, f"stage {stage.label!r}", "callbacks") from None


def build_trainer(
    stage: StageConfig,
    model: str,
    train_ds: Dataset,
    eval_ds: Dataset | None,
    callbacks: list,
    where: str,
    rewards: Composed | None = None,
) -> Trainer:
    """The TRL trainer of the stage; the model is loaded by TRL from `model` (path or hub id). Its evaluate()
    follows the stage's eval plan (train/eval_plan.py, train/evaluation.py)."""
    from rewardkit.train.evaluation import trainer_class

    _, trl_trainer = trl_classes(stage.stage)
    trainer_cls = trainer_class(trl_trainer, callbacks_only=not plan(stage).trl_generates)
    extra: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    if stage.stage == "grpo":
        if rewards is None:  # prepare() composes them for every grpo stage
            raise ConfigError(
                f"stage {stage.label!r}: a grpo trainer needs the composed rewards", hint="pass rewards=."
            )
        # reward_funcs + reward_processing_classes: a plain reward model goes to TRL's own reward-model path.
        reward_kwargs, weights = rewards.to_trl_kwargs()
        extra["reward_weights"] = weights
        kwargs.update(reward_kwargs)
    args = build_args(stage, where, extra)
    # A model or tokenizer that fails to load (e.g. deleted after the preflight) is one ConfigError line.
    with loading(where, stage, model, stage.tokenizer):
        if stage.tokenizer is not None or stage.chat_template is not None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(stage.tokenizer or model)
            if stage.chat_template is not None:  # saved with the adapter / final model: generate --from-run uses it
                tokenizer.chat_template = read_chat_template(stage.chat_template, "tokenizer.chat_template")
            kwargs["processing_class"] = tokenizer
        from peft.utils.error import NoMatchingPeftModuleError

        try:
            return trainer_cls(
                model=model,
                args=args,
                train_dataset=train_ds,
                eval_dataset=eval_ds,
                callbacks=callbacks,
                peft_config=lora_config(stage),
                quantization_config=quantization_config(stage.quantization),
                **kwargs,
            )
        except NoMatchingPeftModuleError:  # was peft's traceback, after the model loaded
            targets = stage.peft.target_modules if stage.peft is not None else None
            raise ConfigError(
                f"{where}: stage {stage.label!r}: peft.target_modules {targets!r} names no module of the model "
                f"{model!r}.",
                hint="name its linear layers (print the model to see them; Qwen2 and Llama: q_proj, k_proj, v_proj, "
                "o_proj, the default when target_modules is left out).",
            ) from None


def merge_adapter(stage: StageConfig, base: str, adapter_dir: str, out_dir: str) -> str:
    """Load the base in full precision, apply the trained adapter, merge and save a plain model to `out_dir`."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    # Reloading the base unquantized avoids merging into 4-bit weights (lossy) after QLoRA.
    if stage.stage == "rm":
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    else:
        model = AutoModelForCausalLM.from_pretrained(base)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir if stage.tokenizer is None else stage.tokenizer)
    # A full disk or a read-only folder is one line naming what failed (safetensors' error names no file).
    with writing(out_dir, f"stage {stage.label!r}: merging the adapter"):
        # Built beside and swapped in whole: a crash mid-save must not leave a `merged/` that a later `@stage` loads.
        tmp = make_temp_dir(Path(out_dir).parent, f".{Path(out_dir).name}.", inside=Path(out_dir).parent)
        try:
            merged.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            atomic_replace_dir(tmp, Path(out_dir), inside=Path(out_dir).parent)  # merged/ of the stage folder
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out_dir
