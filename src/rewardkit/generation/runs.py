"""`--from-run`: model, adapter, tokenizer and prompt mapping of a `rewardkit train` run folder, from the
`rewardkit_stage.json` the pipeline writes when a stage finishes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, DataError
from ..fileio import read_json
from ..paths import run_path, safe_child
from ..validation import stage_ref
from .loading import _has_tokenizer, check_adapter

STAGE_FILE = "rewardkit_stage.json"  # written by rewardkit.train.pipeline.run_stage
_STEP_DIR = re.compile(r"^(step|epoch)_(\d+)$")


@dataclass
class RunSettings:
    """What `--from-run` takes from a training run folder."""

    run_dir: str
    stage: str
    name: str
    model: str
    adapter: str | None
    tokenizer: str | None
    columns: dict[str, str] = field(default_factory=dict)
    chat: bool = False
    system_prompt: str | None = None
    checkpoint: str = ""  # the folder chosen: best, adapters/step_N or final


def _stage_record(run_dir: Path) -> tuple[Path, dict]:
    """(stage folder, its rewardkit_stage.json); a pipeline root resolves to its last stage."""
    if not run_dir.is_dir():
        raise ConfigError(f"--from-run {str(run_dir)!r} is not a folder. Hint: pass a training run's output_dir "
                          "(e.g. runs/sft).")
    if (run_dir / STAGE_FILE).is_file():
        record = read_json(run_dir / STAGE_FILE)
    elif (run_dir / "summary.json").is_file():  # a pipeline's output root: use its last stage
        summary = read_json(run_dir / "summary.json")
        last = summary[-1] if isinstance(summary, list) and summary and isinstance(summary[-1], dict) else {}
        folder = run_dir / str(last.get("name", ""))
        if not (folder / STAGE_FILE).is_file() and last.get("output_dir"):
            folder = Path(last["output_dir"])
        if not (folder / STAGE_FILE).is_file():
            raise ConfigError(f"--from-run {str(run_dir)!r}: summary.json names no stage folder with {STAGE_FILE}. "
                              "Hint: pass the stage's folder (e.g. runs/x/<stage name>).")
        run_dir, record = folder, read_json(folder / STAGE_FILE)
    else:
        raise ConfigError(f"--from-run {str(run_dir)!r} has no {STAGE_FILE} (written when a `rewardkit train` stage "
                          "finishes). Hint: for an unfinished run pass MODEL --adapter DIR instead, e.g. "
                          f"rewardkit generate BASE_MODEL --adapter {run_dir}/best ...")
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise DataError(f"{run_dir / STAGE_FILE}: expected an object with a 'config' mapping. Hint: re-run the "
                        "stage, or pass MODEL --adapter DIR instead of --from-run.")
    return run_dir, record


def _newest_saved(folder: Path) -> Path | None:
    """lora_save's newest folder: highest step_N, else highest epoch_E."""
    if not folder.is_dir():
        return None
    found = [(m.group(1) == "step", int(m.group(2)), p) for p in folder.iterdir()
             if p.is_dir() and (m := _STEP_DIR.match(p.name))
             and ((p / "adapter_config.json").is_file() or (p / "config.json").is_file())]
    return max(found)[2] if found else None


def resolve_run(run_dir: str | Path, adapter: str | Path | None = None) -> RunSettings:
    """Model, adapter, tokenizer and prompt mapping of a `rewardkit train` run folder.

    The checkpoint is `best/` (best_checkpoint) if present, else lora_save's newest `adapters/step_N`, else the
    stage's `final/`; an explicit `adapter` overrides the choice. A folder holding an adapter is applied to the
    stage's base model; one holding a full model is used as the model.
    """
    folder, record = _stage_record(Path(run_dir))
    config = record["config"]
    stage, name = str(config.get("stage", "")), str(record.get("name") or config.get("name") or config.get("stage"))
    if stage == "rm":
        raise ConfigError(f"--from-run {str(folder)!r} is a reward-model stage (rm), which cannot generate text. "
                          "Hint: pass the run of an sft, dpo or grpo stage.")
    callbacks = {cb.get("name"): cb for cb in config.get("callbacks") or [] if isinstance(cb, dict)}
    best = safe_child(folder, str(callbacks.get("best_checkpoint", {}).get("best_dir") or "best"), "best_dir")
    saved = callbacks.get("lora_save", {}).get("output_dir")
    # lora_save's folder is relative to the stage's output_dir (as the callback resolves it), or absolute
    adapters = run_path(folder, saved, "lora_save.output_dir") if saved else folder / "adapters"
    candidates = [("best", best), ("lora_save", _newest_saved(adapters)),
                  ("final", folder / "final")]
    if adapter is not None:
        candidates = [("--adapter", Path(adapter))]
        check_adapter(adapter)
    chosen = next((p for _, p in candidates if p is not None and p.is_dir()
                   and ((p / "adapter_config.json").is_file() or (p / "config.json").is_file())), None)
    if chosen is None:
        raise ConfigError(f"--from-run {str(folder)!r}: no best/, adapters/step_N/ or final/ folder with a model "
                          "or adapter. Hint: pass MODEL --adapter DIR instead.")
    data = config.get("dataset") or {}
    settings = RunSettings(run_dir=str(folder), stage=stage, name=name, model="", adapter=None,
                           tokenizer=config.get("tokenizer"), columns=dict(data.get("columns") or {}),
                           chat=bool(data.get("chat")), system_prompt=data.get("system_prompt"),
                           checkpoint=str(chosen))
    if (chosen / "adapter_config.json").is_file():
        settings.adapter = str(chosen)
        base = record.get("base_model") or config.get("model")
        if not base or stage_ref(str(base)) is not None:  # runs saved before base_model was recorded
            adapter_config = read_json(chosen / "adapter_config.json")
            base = adapter_config.get("base_model_name_or_path") if isinstance(adapter_config, dict) else None
        if not base:
            raise ConfigError(f"--from-run {str(folder)!r}: cannot tell the base model of adapter {str(chosen)!r}. "
                              "Hint: pass MODEL --adapter DIR instead.")
        settings.model = str(base)
    else:  # a full model (training without LoRA)
        settings.model = str(chosen)
        if settings.tokenizer is None and not _has_tokenizer(chosen):
            settings.tokenizer = str(config.get("model")) if stage_ref(str(config.get("model"))) is None else None
    return settings
