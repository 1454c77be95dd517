"""`rewardkit train CONFIG --smoke`: the whole config end to end, offline on CPU, in about a minute.

`smoke_overrides(stages)` is a pure function over the validated stages (the YAML is never edited): it keeps
what the config is about and swaps what cannot run on a laptop, returning new stages and one note per swap.

Kept: the datasets (their first rows), column mapping and chat wrapping, rewards, callbacks, LoRA and the
pipeline wiring (`model: "@sft"`, `model: "@rm"` in rewards). Swapped:

- every stage's `model` (not `@stage` references) -> a tiny random Qwen2 (hidden 32, 2 layers) with a character
  tokenizer over the characters of the config's data and system prompts, and ChatML; `tokenizer:` is dropped.
  One model per alphabet, cached in `<cache>/lm-<hash>` so the second run builds nothing.
- models in reward specs (`rewards:` and callbacks' `spec:`) that are not local folders, found through the
  `ModelRef` marker of each reward's parameters (plugins' rewards too): BERTScore's `model_type` (or its `lang`
  default) -> a tiny BERT (`<cache>/bert-<hash>`, num_layers 2, no baseline rescaling); `bleurt`'s `model` -> a tiny BLEURT checkpoint (`<cache>/bleurt-<hash>`, needs
  sentencepiece); `reward_model`'s `model` -> a tiny sequence classifier (`<cache>/rm-<hash>`), its `tokenizer` -> the classifier's own.
- a `judge` reward -> its offline stand-in (`offline_stand_in: true`): no server is asked, nothing is cached; each
  request gets a reply on the judge's scale chosen by a hash of the request (deterministic, not a judgement).
- data: `dataset.smoke_path` (a local file) replaces `path` / `generator` (an `eval_split` becomes 4 held-out
  rows); then 8 training rows and 4 eval rows. A hub dataset without `smoke_path` must be in the local cache.
- quantization off; trainer: CPU, fp32, 2 steps, an evaluation (when the stage has an eval set) and a save
  at step 2, batch 2, no gradient accumulation; GRPO: 2 generations of at most 8 tokens; sequences <= 256
  tokens; callbacks' `max_new_tokens` <= 8; reporting, hub pushes, DeepSpeed/FSDP and bitsandbytes optimizers off.
- outputs: `runs/smoke/<config name>/` (or `$REWARDKIT_SMOKE_DIR/<config name>/`), emptied first, so a smoke
  run never touches a real run's folders.

Cache: `$REWARDKIT_CACHE/smoke`, else `$XDG_CACHE_HOME/rewardkit/smoke`, else `~/.cache/rewardkit/smoke`.
The run is offline (HF_HUB_OFFLINE=1) while it lasts.
"""

from __future__ import annotations

import contextlib
import os
import string
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

from rewardkit.core.distributed import is_main_process, process_info
from rewardkit.core.errors import ConfigError, DataError
from rewardkit.core.output_dirs import OUTPUT_MARKER as MARKER  # noqa: F401  (tests and tools read smoke.MARKER)
from rewardkit.core.output_dirs import claim_output_dir
from rewardkit.core.tiny import strings_in
from rewardkit.core.validation import stage_ref
from rewardkit.train import data
from rewardkit.train.config import DatasetSpec, StageConfig, validate
from rewardkit.train.data import load_local
from rewardkit.train.preflight import TRUE_VALUES, spec_sources  # noqa: F401 (TRUE_VALUES re-exported)
from rewardkit.train.run_lock import LOCK, in_use, live_owner
from rewardkit.train.smoke_models import (  # noqa: F401
    DONE,
    TINY_BERT,
    TINY_NAMES,
    Tiny,
    cache_dir,
    tiny_bert,
    tiny_lm,
    tiny_reward_model,
)
from rewardkit.train.smoke_models import (
    swap_spec as _swap_spec,
)

STEPS = 2
TRAIN_ROWS = 8
EVAL_ROWS = 4
NEW_TOKENS = 8
MAX_LENGTH = 256
QWEN2_MODULES = {
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "embed_tokens",
    "lm_head",
    "score",
}
# Trainer keys that need a GPU, a cluster, the network or a long run: removed (TRL's defaults apply).
DROP_TRAINER = (
    "deepspeed",
    "fsdp",
    "fsdp_config",
    "parallelism_config",
    "resume_from_checkpoint",
    "torch_compile",
    "torch_compile_backend",
    "torch_compile_mode",
    "tf32",
    "generation_batch_size",
    "steps_per_generation",
    "use_transformers_paged",
    "use_transformers_continuous_batching",
    "auto_find_batch_size",
)
DROP_INIT = ("dtype", "torch_dtype", "device_map", "quantization_config", "attn_implementation")
# Set on every smoke stage but named in the note only when the config had another value.
QUIET = {"logging_steps", "use_cpu", "bf16", "fp16", "report_to", "dataloader_num_workers", "push_to_hub", "use_vllm"}


def output_root(where: str, real_output: str | None = None) -> Path:
    """The smoke run's output folder: runs/smoke/<name> (or $REWARDKIT_SMOKE_DIR/<name>).

    The name is the config file's stem; for a dict config, the last part of its own output folder.
    """
    name = Path(where).stem if where != "config" else Path(real_output or "config").name
    return Path(os.environ.get("REWARDKIT_SMOKE_DIR") or Path("runs") / "smoke") / (name or "config")


# --- data -----------------------------------------------------------------------------------------------------------
def _rows(spec: Any, where: str, label: str) -> list[dict]:
    """The rows of the (swapped) dataset spec; a hub dataset must be in the local cache."""
    try:
        ds, _ = data._load(spec)
    except DataError:
        if spec.path is not None and not data.is_local(spec.path):
            raise ConfigError(
                f"{where}: stage {label!r}: dataset.path {spec.path!r} is a hub dataset that is not in "
                "the local cache, and --smoke runs offline.",
                hint="add `smoke_path: <local .jsonl with a few rows in the same format>` under dataset "
                "(examples/data/ has samples), or --set dataset.path=rows.jsonl.",
            ) from None
        raise
    return ds.select(range(min(len(ds), TRAIN_ROWS + EVAL_ROWS))).to_list()


def _dataset(stage: StageConfig, where: str, notes: list[str]) -> tuple[dict, set[str]]:
    """The smoke dataset spec of a stage and the characters its rows use."""
    ds = stage.dataset.model_dump()
    label = stage.label
    source = ds.pop("smoke_path")
    if source is not None:
        old = ds["path"] or f"generator {ds['generator']}"
        ds.update(path=source, generator=None, name=None, split="train")
        if ds["eval_split"] is not None:
            ds.update(eval_split=None, eval_size=EVAL_ROWS)
    ds["smoke_path"] = None
    rows = _rows(DatasetSpec(**ds), where, label)
    n = min(len(rows), ds["max_rows"] or len(rows))  # a smaller max_rows of the config is kept
    if ds["eval_size"] is not None:
        held = EVAL_ROWS if n >= TRAIN_ROWS + EVAL_ROWS else max(1, n // 3)
        ds.update(eval_size=held, max_rows=min(n, TRAIN_ROWS + held))
        shape = f"{ds['max_rows'] - held} training rows + {held} held out"
    else:
        ds["max_rows"] = min(n, TRAIN_ROWS)
        shape = f"first {ds['max_rows']} rows"
        if ds["eval_file"] is not None or ds["eval_split"] is not None:
            ds["eval_max_rows"] = EVAL_ROWS
            shape += f" + {EVAL_ROWS} eval rows"
    chars = {c for row in rows[: ds["max_rows"]] for text in strings_in(row) for c in text}
    if ds["eval_file"] is not None and Path(ds["eval_file"]).is_file():
        chars |= _eval_chars(ds["eval_file"])
    chars |= set(ds["system_prompt"] or "")
    what = ds["path"] or f"generator {ds['generator']}"
    if source is not None:
        what = f"{old} -> {source} (dataset.smoke_path)"
    notes.append(f"stage {label}: dataset {what}: {shape}")
    return ds, chars


def _eval_chars(path: str) -> set[str]:
    eval_ds = load_local(path)
    rows = eval_ds.select(range(min(len(eval_ds), EVAL_ROWS))).to_list()
    return {c for row in rows for text in strings_in(row) for c in text}


# --- trainer ----------------------------------------------------------------------------------------------------------
def _trainer(stage: StageConfig, has_eval: bool) -> dict:
    t = {k: v for k, v in stage.trainer.items() if k not in DROP_TRAINER}
    t.update(
        max_steps=STEPS,
        logging_steps=1,
        use_cpu=True,
        bf16=False,
        fp16=False,
        report_to="none",
        save_strategy="steps",
        save_steps=STEPS,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        dataloader_num_workers=0,
        push_to_hub=False,
    )
    if has_eval:
        t.update(eval_strategy="steps", eval_steps=STEPS, per_device_eval_batch_size=2)
    else:  # prepare() refuses an eval strategy without an eval set: nothing to evaluate on
        for key in ("eval_strategy", "eval_steps", "eval_on_start", "load_best_model_at_end"):
            t.pop(key, None)
    optim = str(t.get("optim", ""))
    if any(word in optim for word in ("8bit", "paged", "bnb")):
        t["optim"] = "adamw_torch"
    if isinstance(t.get("model_init_kwargs"), dict):
        t["model_init_kwargs"] = {k: v for k, v in t["model_init_kwargs"].items() if k not in DROP_INIT}
    if stage.stage == "grpo":
        t.update(num_generations=2, max_completion_length=NEW_TOKENS, use_vllm=False)
        if has_eval:
            t["num_generations_eval"] = 2
    else:
        length = t.get("max_length")
        t["max_length"] = min(length, MAX_LENGTH) if isinstance(length, int) else MAX_LENGTH
    return t


def _scale_out_notes(trainer: dict) -> list[str]:
    """What the smoke run turns off of a multi-GPU setup, in words (the trainer note lists the keys)."""
    notes = []
    sharding = [k for k in ("fsdp", "fsdp_config", "deepspeed") if trainer.get(k)]
    if sharding:
        notes.append(
            f"sharded training off (dropped trainer.{', trainer.'.join(sharding)}): one CPU process, "
            "no FSDP / DeepSpeed; the real run shards under `accelerate launch`"
        )
    if trainer.get("use_vllm"):
        notes.append(
            f"vLLM generation off (trainer.use_vllm true -> false, vllm_mode "
            f"{trainer.get('vllm_mode', 'colocate')}): GRPO generates with transformers"
        )
    return notes


def _changes(old: dict, new: dict) -> str:
    parts = [f"{k}={new[k]!r}" for k in new if old.get(k, object()) != new[k] and (k in old or k not in QUIET)]
    parts += [f"-{k}" for k in old if k not in new]
    return ", ".join(parts)


# --- the whole config -------------------------------------------------------------------------------------------------
def smoke_overrides(
    stages: list[StageConfig], where: str = "config", root: str | Path | None = None
) -> tuple[list[StageConfig], list[str]]:
    """The smoke version of validated stages, and one note per swap (see the module docstring).

    Reads the stages' first data rows (for the tokenizer's alphabet) and builds the tiny models into the cache;
    the given stages are not modified. `root` is the output folder (default: `output_root(where)`).
    """
    root = Path(root) if root is not None else output_root(where)
    per_stage: list[list[str]] = [[] for _ in stages]  # notes, printed stage by stage
    datasets: list[dict] = []
    chars: set[str] = set()
    for stage, notes in zip(stages, per_stage):
        ds, used = _dataset(stage, where, notes)
        datasets.append(ds)
        chars |= used
    tiny = Tiny("".join(sorted(chars - set(string.printable))))
    out: list[StageConfig] = []
    for i, (stage, ds, notes) in enumerate(zip(stages, datasets, per_stage)):
        label = stage.label
        d = stage.model_dump()
        d["dataset"] = ds
        if stage_ref(stage.model) is None:
            d["model"] = tiny.get("lm")
            notes.append(f"stage {label}: model {stage.model} -> tiny local ({d['model']})")
        if stage.tokenizer is not None:
            d["tokenizer"] = None
            notes.append(f"stage {label}: tokenizer {stage.tokenizer} -> the tiny model's own")
        if stage.quantization is not None:
            d["quantization"] = None
            notes.append(f"stage {label}: quantization {stage.quantization.bits}-bit -> none (CPU, fp32)")
        targets = stage.peft.target_modules if stage.peft is not None else None
        if isinstance(targets, list) and not set(targets) <= QWEN2_MODULES:
            d["peft"]["target_modules"] = ["q_proj", "k_proj", "v_proj", "o_proj"]
            notes.append(f"stage {label}: peft.target_modules {targets} -> [q_proj, k_proj, v_proj, o_proj]")
        has_eval = any(ds[k] is not None for k in ("eval_size", "eval_file", "eval_split"))
        d["trainer"] = _trainer(stage, has_eval)
        notes.append(f"stage {label}: trainer {_changes(stage.trainer, d['trainer'])}")
        notes.extend(f"stage {label}: {line}" for line in _scale_out_notes(stage.trainer))
        for key, spec in spec_sources(stage):
            swapped = _swap_spec(spec, key, label, tiny, notes)
            if swapped is spec:
                continue
            if key == "rewards":
                d["rewards"] = swapped
            else:
                d["callbacks"][int(key.split("[")[1].split("]")[0])]["spec"] = swapped
        for j, cb in enumerate(d["callbacks"]):
            tokens = cb.get("max_new_tokens")
            if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > NEW_TOKENS:
                cb["max_new_tokens"] = NEW_TOKENS
                notes.append(
                    f"stage {label}: callbacks[{j}] ({cb.get('name')}) max_new_tokens {tokens} -> {NEW_TOKENS}"
                )
        d["output_dir"] = str(root if len(stages) == 1 else root / label)
        out.append(validate(StageConfig, d, where, prefix=f"pipeline.{i}" if len(stages) > 1 else ""))
    return out, [f"smoke: {n}" for notes in per_stage for n in notes]


@contextlib.contextmanager
def smoke_mode() -> Iterator[None]:
    """Offline (HF_HUB_OFFLINE=1 and the libraries' copies of it) on one torch thread; restored afterwards.

    One thread: a tiny model gains nothing from more, and on a busy machine the extra threads mostly wait.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _offline():
            yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """HF_HUB_OFFLINE=1 (and the libraries' copies of it) while the block runs; restored afterwards."""
    keys = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    attrs = (
        ("huggingface_hub.constants", "HF_HUB_OFFLINE"),
        ("datasets.config", "HF_HUB_OFFLINE"),
        ("datasets.config", "HF_DATASETS_OFFLINE"),
    )
    saved_env = {k: os.environ.get(k) for k in keys}
    saved = {(m, a): getattr(sys.modules[m], a) for m, a in attrs if m in sys.modules and hasattr(sys.modules[m], a)}
    for k in keys:
        os.environ[k] = "1"
    for m, a in saved:
        setattr(sys.modules[m], a, True)
    try:
        yield
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        env_offline = any(os.environ.get(k, "").strip().lower() in TRUE_VALUES for k in keys)
        for m, a in attrs:  # modules first imported inside the block read the forced value: undo that too
            if m in sys.modules and hasattr(sys.modules[m], a):
                setattr(sys.modules[m], a, saved.get((m, a), env_offline))


def prepare_output(root: Path) -> None:
    """Empty the smoke output folder of an earlier smoke run; refuse a folder --smoke did not write."""
    owner = live_owner(root) if root.is_dir() else None
    if owner is not None:  # a smoke run of the same config is still training there: emptying it would break it
        raise in_use(owner)
    claim_output_dir(
        root,
        "rewardkit train --smoke",
        ConfigError(
            f"smoke output folder {root} exists and was not written by --smoke.",
            hint="move it, or set REWARDKIT_SMOKE_DIR to another folder.",
        ),
        delete=process_info()[1] <= 1,  # under a launcher every rank would delete it
        write_marker=is_main_process(),
        transient=frozenset({LOCK}),
    )


def smoke_setup(
    stages: list[StageConfig], root: str, where: str, say: Callable[[str], object], output: str | Path | None = None
) -> tuple[list[StageConfig], str]:
    """Swap the stages for their smoke version, empty the smoke output folder and print what changed.

    `root` is the real run's output root (it only names the smoke folder of a dict config); `output` replaces the
    smoke folder. The first line says where the run writes.
    """
    folder = (
        Path(output) if output is not None else output_root(where, stages[0].output_dir if len(stages) == 1 else root)
    )
    if is_main_process():
        say(f"smoke: writing to {folder.resolve()}/ (emptied first; real runs are untouched; --output DIR to change)")
    smoke, notes = smoke_overrides(stages, where, folder)
    prepare_output(folder)
    if is_main_process():
        for note in notes:
            say(note)
    return smoke, str(folder)
