"""The training config: pydantic models, `--set key=value` overrides and readable validation errors.

Light module (pydantic + yaml only): TRL's config dataclasses are checked later, in `stages.py`.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import Field, model_validator

from rewardkit.core.errors import ConfigError, closest
from rewardkit.core.fileio import nonfinite_path
from rewardkit.core.specs import load_file, parse_assignment, read_chat_template
from rewardkit.core.validation import REF_PREFIX, M, Params, duplicates, stage_ref  # noqa: F401 (REF_PREFIX re-exported)
from rewardkit.core.validation import validate as _validate
from rewardkit.train.trainer_bounds import bound_problem, choice_problem

STAGE_FILE = (
    "rewardkit_stage.json"  # the record a finished stage leaves in its folder (pipeline writes, generate reads)
)
CONFIG_HINT = "examples/README.md lists every key."
# Stage names become folder names under the run: plain names only, never a path.
_PLAIN_NAME = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,100}$")
_INDEX = re.compile(r"^-?[0-9]+$")  # a list index in a --set key


class _Model(Params):
    pass


class DatasetSpec(_Model):
    """Where the rows come from and how their columns map to what the TRL trainer expects."""

    path: str | None = Field(None, description="Hub dataset id, or a local .json / .jsonl / .parquet file.")
    name: str | None = Field(None, description="Hub dataset configuration name.")
    generator: str | None = Field(None, description="Built-in generator instead of a file, e.g. 'arithmetic'.")
    n: int = Field(500, gt=0, description="Rows to generate (generator only).")
    seed: int = Field(0, description="Generator seed and eval_size split seed.")
    params: dict[str, Any] = Field(default_factory=dict, description="Generator parameters.")
    split: str = Field("train", description="Hub split (slices like 'train[:300]' work); local files: ignored.")
    max_rows: int | None = Field(None, gt=0, description="Keep the first N rows (after the split).")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Rename columns: {name in the file: name "
        "the trainer expects}; dotted names reach into nested objects (input.question).",
    )
    chat: bool = Field(False, description="Wrap string prompts (and completions) into chat messages.")
    system_prompt: str | None = Field(None, description="System message put before each prompt (implies chat).")
    eval_split: str | None = Field(None, description="Hub split used for evaluation.")
    eval_file: str | None = Field(None, description="Local file used for evaluation (same column mapping).")
    eval_size: float | int | None = Field(None, gt=0, description="Hold out this fraction (< 1) or number of rows.")
    eval_max_rows: int | None = Field(None, gt=0, description="Keep the first N rows of eval_file / eval_split.")
    smoke_path: str | None = Field(
        None,
        description="Local file that `rewardkit train --smoke` reads instead of "
        "path / generator: a few rows in the same format (e.g. a hub dataset's sample).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> "DatasetSpec":
        if (self.path is None) == (self.generator is None):
            raise ValueError("give exactly one of 'path' (hub id or local file) and 'generator' (e.g. arithmetic)")
        if sum(x is not None for x in (self.eval_split, self.eval_file, self.eval_size)) > 1:
            raise ValueError("give at most one of eval_split, eval_file and eval_size")
        return self


class LoraSpec(_Model):
    """LoRA adapter; the task type follows the stage (SEQ_CLS for rm, CAUSAL_LM otherwise)."""

    r: int = Field(8, gt=0)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: Union[list[str], str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    bias: Literal["none", "all", "lora_only"] = "none"
    modules_to_save: list[str] | None = None


class QuantizationSpec(_Model):
    """bitsandbytes quantization of the base model (QLoRA); needs a CUDA GPU."""

    bits: Literal[4, 8] = 4
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    compute_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"


class StageConfig(_Model):
    """One training run: stage, model, data, adapter, quantization, TRL arguments, rewards and callbacks."""

    stage: Literal["sft", "rm", "dpo", "grpo"]
    name: str | None = Field(None, description="Stage name (default: the stage type); `@name` refers to it.")
    model: str = Field(description="Hub id, local path, or '@<earlier stage>' in a pipeline.")
    tokenizer: str | None = Field(
        None,
        description="Tokenizer path or id when it differs from the model's; or "
        "{path: ..., chat_template: <file or template>}.",
    )
    chat_template: str | None = Field(
        None,
        description="Chat template (a .jinja file or the text) replacing the "
        "tokenizer's; written as tokenizer.chat_template.",
    )
    output_dir: str | None = Field(None, description="Default: runs/<name> (pipeline: <pipeline output>/<name>).")
    dataset: DatasetSpec
    peft: LoraSpec | None = None
    quantization: QuantizationSpec | None = None
    trainer: dict[str, Any] = Field(default_factory=dict, description="Arguments of the stage's TRL config class.")
    rewards: Union[dict[str, Any], str, None] = Field(None, description="GRPO: compose spec, spec file or preset.")
    callbacks: list[dict[str, Any]] = Field(default_factory=list, description="[{name: ..., **params}, ...]")
    trl_eval: bool | None = Field(
        None,
        description="GRPO: whether TRL's generation-based evaluation runs at each evaluation. Unset: off when a "
        "checkpoint_inference generates the eval split ('@eval') at evaluation and metric_for_best_model is unset "
        "or a best_checkpoint metric (the rows are generated once); true: on as well (the rows are generated "
        "twice); false: off (evaluation runs only the callbacks).",
    )

    @property
    def label(self) -> str:
        return self.name or self.stage

    @property
    def folder(self) -> Path:
        """`output_dir` as a Path; load_stages always fills it in, a hand-built StageConfig may not."""
        if self.output_dir is None:
            raise ConfigError(
                f"stage {self.label!r} has no output_dir",
                hint="set output_dir, or load the config with load_stages (it defaults to runs/<name>).",
            )
        return Path(self.output_dir)

    @model_validator(mode="before")
    @classmethod
    def _tokenizer_mapping(cls, data: Any) -> Any:
        """`tokenizer: {path: ..., chat_template: ...}` is read as the `tokenizer` and `chat_template` fields."""
        if isinstance(data, dict) and isinstance(data.get("tokenizer"), dict):
            data = dict(data)
            given = dict(data.pop("tokenizer"))
            unknown = set(given) - {"path", "chat_template"}
            if unknown:
                raise ValueError(
                    f"tokenizer: unknown keys {sorted(map(str, unknown))}; a tokenizer mapping has "
                    "path and chat_template"
                )
            data["tokenizer"] = given.get("path")
            if "chat_template" in given:
                data["chat_template"] = given["chat_template"]
        return data

    @model_validator(mode="after")
    def _stage_fields(self) -> "StageConfig":
        if self.name is not None and not _PLAIN_NAME.match(self.name):
            raise ValueError(
                f"name {self.name!r} must be a plain name (letters, digits, _ . -), not a path: it "
                "becomes a folder inside the run"
            )
        bad = nonfinite_path(self.trainer, "trainer")
        if bad:
            raise ValueError(f"{bad} is not a finite number; trainer values must be finite")
        if self.trl_eval is not None and self.stage != "grpo":
            raise ValueError(f"'trl_eval' is only used by stage grpo (its evaluation generates), not {self.stage}")
        out_of_range = bound_problem(self.trainer) or choice_problem(self.stage, self.trainer)  # before any model
        if out_of_range:
            raise ValueError(out_of_range)
        if self.stage == "grpo" and self.rewards is None:
            raise ValueError("stage grpo needs 'rewards' (a compose spec, a spec file or a preset name)")
        if self.stage != "grpo" and self.rewards is not None:
            raise ValueError(f"'rewards' is only used by stage grpo, not {self.stage}")
        if self.chat_template is not None:
            try:
                read_chat_template(self.chat_template, "tokenizer.chat_template")
            except ConfigError as exc:
                raise ValueError(exc.problem.rstrip(".")) from None
        if self.quantization is not None and self.peft is None:
            raise ValueError(
                "quantized weights cannot be trained directly: add a 'peft' (LoRA) section or set quantization: null"
            )
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb.get("name"), str):
                raise ValueError(f"callbacks[{i}] needs 'name: <registered callback>', got {cb!r}")
        return self


class PipelineConfig(_Model):
    """Stages run in order; `defaults` is merged into every stage (the stage's own values win)."""

    pipeline: list[dict[str, Any]] = Field(min_length=1)
    output_dir: str = "runs"
    defaults: dict[str, Any] = Field(default_factory=dict)


# --- overrides -------------------------------------------------------------------------------------------------
def parse_override(item: str) -> tuple[list[str], Any]:
    """Split 'a.b=value' into (['a', 'b'], YAML-parsed value)."""
    key = item.partition("=")[0].strip()
    if "=" not in item or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: expected key=value with a dotted key.", hint="--set trainer.max_steps=2.")
    key, value = parse_assignment(item)
    return key.split("."), value


def _child(node: Any, part: str, where: str) -> Any:
    """The list element addressed by index or by stage name."""
    if _INDEX.match(part):  # ASCII digits only: str.isdigit() also takes '²' and '١' (an Arabic-Indic 1)
        index = int(part) if len(part) < 19 else None  # int() of thousands of digits is refused by Python
        if index is None or not -len(node) <= index < len(node):
            raise ConfigError(f"--set {where}: index {part[:20]} is out of range ({len(node)} items).")
        return index
    names = [(i, item.get("name") or item.get("stage")) for i, item in enumerate(node) if isinstance(item, dict)]
    for i, name in names:
        if name == part:
            return i
    raise ConfigError(
        f"--set {where}: no item named {part!r}.{closest(part, [n for _, n in names if n])}",
        hint=f"use an index or one of {[n for _, n in names]}.",
    )


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """A copy of `data` with each 'dotted.key=value' set (lists take an index or a stage name)."""
    data = copy.deepcopy(data)
    for item in overrides or []:
        path, value = parse_override(item)
        node: Any = data
        for depth, part in enumerate(path):
            where = ".".join(path[: depth + 1])
            last = depth == len(path) - 1
            if isinstance(node, list):
                key: Any = _child(node, part, where)
            elif isinstance(node, dict):
                key = part
            else:
                raise ConfigError(
                    f"--set {item!r}: {'.'.join(path[:depth])} is {node!r}, not a mapping.",
                    hint=f"replace it whole (--set {'.'.join(path[:depth])}=...).",
                )
            if key in ("rewards", "spec") and not last and isinstance(node, dict) and _is_preset(node.get(key)):
                # a preset or spec file (`rewards: blog`) is adjusted, not replaced: {preset: blog, set: {...}}
                ref = node[key]
                node[key] = ref = ref if isinstance(ref, dict) else {"preset": ref, "set": {}}
                if not isinstance(ref.get("set"), dict):
                    ref["set"] = {}
                ref["set"][".".join(path[depth + 1 :])] = value
                break
            if last:
                node[key] = value
            else:
                if isinstance(node, dict) and (key not in node or node[key] is None):
                    node[key] = {}
                node = node[key]
    return data


def _is_preset(value: Any) -> bool:
    """A compose spec given by name or file (`blog`, `spec.yaml`) or as `{preset: ..., set: ...}`."""
    return isinstance(value, str) and stage_ref(value) is None or (isinstance(value, dict) and "preset" in value)


def validate(model: type[M], data: object, where: str, prefix: str = "") -> M:
    """The shared validator with the config's hint."""
    return _validate(model, data, where, prefix=prefix, hint=CONFIG_HINT)


def _deep_merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# YAML 1.1 (PyYAML) reads these unquoted words as booleans, so `on: save` becomes {True: "save"}.
_YAML_BOOLS = {True: "on, yes, true, y", False: "off, no, false, n"}


def non_text_key(data: object, path: str = "") -> ConfigError | None:
    """The error for the first mapping key that is not text (where it is and what YAML made of it), or None."""
    stack = [(data, path)]
    while stack:
        node, where = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            at = f"{where}.{key}" if where else str(key)
            if isinstance(node, dict) and not isinstance(key, str):
                words = _YAML_BOOLS.get(key) if isinstance(key, bool) else None
                why = (
                    f"YAML 1.1 reads unquoted {words} as {key}"
                    if words
                    else f"a key must be text, not {type(key).__name__}"
                )
                example = "on" if key is True else "off" if key is False else key
                return ConfigError(
                    f"{where or 'the config'}: key {key!r} is not text: {why}.", hint=f'quote it, e.g. "{example}": ...'
                )
            stack.append((value, at))
    return None


def read_config(source: str | Path | dict, overrides: list[str] | None = None) -> tuple[dict, str]:
    """The raw config dict (file or dict, overrides applied) and a name for messages."""
    if isinstance(source, dict):
        data, where = source, "config"
    else:
        data, where = load_file(source), str(source)
    data = apply_overrides(data, overrides)
    error = non_text_key(data)
    if error is not None:
        raise error.within(where)
    return data, where


def load_stages(source: str | Path | dict, overrides: list[str] | None = None) -> tuple[list[StageConfig], str, str]:
    """Validated stages, the pipeline output root and the config's name (single-stage configs give one stage)."""
    data, where = read_config(source, overrides)
    if "pipeline" not in data:
        stage = validate(StageConfig, data, where)
        if stage_ref(stage.model) is not None:
            raise ConfigError(
                f"{where}: model {stage.model!r} refers to an earlier stage, but this config has one stage.",
                hint="use a `pipeline:` list, or give a hub id or a local path.",
            )
        stage.output_dir = stage.output_dir or str(Path("runs") / stage.label)
        return [stage], str(Path(stage.output_dir).parent), where
    pipe = validate(PipelineConfig, data, where)
    stages = []
    for i, raw in enumerate(pipe.pipeline):
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: pipeline[{i}] must be a mapping (a stage config), got {raw!r}.")
        merged = _deep_merge(pipe.defaults, raw)
        stages.append(validate(StageConfig, merged, where, prefix=f"pipeline.{i}"))
    labels = [s.label for s in stages]
    dupes = duplicates(labels)
    if dupes:
        raise ConfigError(f"{where}: stage names {dupes} occur twice.", hint="give each stage a unique 'name:'.")
    for i, stage in enumerate(stages):
        if stage.output_dir is None:
            stage.output_dir = str(Path(pipe.output_dir) / stage.label)
        ref = stage.model
        ref_stage = stage_ref(ref)
        if ref_stage is not None and ref_stage not in labels[:i]:
            raise ConfigError(
                f"{where}: pipeline.{i}.model {ref!r} does not name an earlier stage.{closest(ref_stage, labels[:i])}",
                hint=f"earlier stages are {labels[:i] or 'none'}.",
            )
    return stages, pipe.output_dir, where
