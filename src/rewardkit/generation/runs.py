"""`--from-run`: model, adapter, tokenizer and prompt mapping of a `rewardkit train` run folder, from the
`rewardkit_stage.json` the pipeline writes when a stage finishes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rewardkit.core.errors import ConfigError
from rewardkit.core.fileio import read_json
from rewardkit.core.paths import run_path, safe_child
from rewardkit.core.validation import stage_ref
from rewardkit.generation.loading import _has_tokenizer, check_adapter
from rewardkit.train.record import STAGE_FILE, StageRecord, read_stage_record

__all__ = ["STAGE_FILE", "RunSettings", "resolve_run"]
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


def _stage_record(run_dir: Path) -> tuple[Path, StageRecord]:
    """(stage folder, its validated rewardkit_stage.json); a pipeline root resolves to its last stage."""
    if not run_dir.is_dir():
        raise ConfigError(
            f"--from-run {str(run_dir)!r} is not a folder.", hint="pass a training run's output_dir (e.g. runs/sft)."
        )
    if (run_dir / STAGE_FILE).is_file():
        return run_dir, read_stage_record(run_dir / STAGE_FILE)
    if (run_dir / "summary.json").is_file():  # a pipeline's output root: use its last stage
        summary = read_json(run_dir / "summary.json")
        last = summary[-1] if isinstance(summary, list) and summary and isinstance(summary[-1], dict) else {}
        name = last.get("name")
        # The stage's folder inside the run (never `../elsewhere`), else the output_dir the summary records.
        folder = safe_child(run_dir, name, "summary.json stage name") if isinstance(name, str) and name else None
        if (folder is None or not (folder / STAGE_FILE).is_file()) and isinstance(last.get("output_dir"), str):
            folder = Path(last["output_dir"])
        if folder is None or not (folder / STAGE_FILE).is_file():
            raise ConfigError(
                f"--from-run {str(run_dir)!r}: summary.json names no stage folder with {STAGE_FILE}.",
                hint="pass the stage's folder (e.g. runs/x/<stage name>).",
            )
        return folder, read_stage_record(folder / STAGE_FILE)
    raise ConfigError(
        f"--from-run {str(run_dir)!r} has no {STAGE_FILE} (written when a `rewardkit train` stage finishes).",
        hint="for an unfinished run pass MODEL --adapter DIR instead, e.g. "
        f"rewardkit generate BASE_MODEL --adapter {run_dir}/best ...",
    )


def _newest_saved(folder: Path) -> Path | None:
    """lora_save's newest folder: highest step_N, else highest epoch_E."""
    if not folder.is_dir():
        return None
    found = [
        (m.group(1) == "step", int(m.group(2)), p)
        for p in folder.iterdir()
        if p.is_dir()
        and (m := _STEP_DIR.match(p.name))
        and ((p / "adapter_config.json").is_file() or (p / "config.json").is_file())
    ]
    return max(found)[2] if found else None


def resolve_run(run_dir: str | Path, adapter: str | Path | None = None) -> RunSettings:
    """Model, adapter, tokenizer and prompt mapping of a `rewardkit train` run folder.

    The checkpoint is `best/` (best_checkpoint) if present, else lora_save's newest `adapters/step_N`, else the
    stage's `final/`; an explicit `adapter` overrides the choice. A folder holding an adapter is applied to the
    stage's base model; one holding a full model is used as the model.
    """
    folder, record = _stage_record(Path(run_dir))
    config = record.config
    stage, name = config.stage, record.name or config.label
    if stage == "rm":
        raise ConfigError(
            f"--from-run {str(folder)!r} is a reward-model stage (rm), which cannot generate text.",
            hint="pass the run of an sft, dpo or grpo stage.",
        )
    callbacks = {cb.get("name"): cb for cb in config.callbacks}
    best = safe_child(folder, str(callbacks.get("best_checkpoint", {}).get("best_dir") or "best"), "best_dir")
    saved = callbacks.get("lora_save", {}).get("output_dir")
    # lora_save's folder is relative to the stage's output_dir (as the callback resolves it), or absolute
    adapters = run_path(folder, saved, "lora_save.output_dir") if saved else folder / "adapters"
    candidates = [("best", best), ("lora_save", _newest_saved(adapters)), ("final", folder / "final")]
    if adapter is not None:
        candidates = [("--adapter", Path(adapter))]
        check_adapter(adapter)
    chosen = next(
        (
            p
            for _, p in candidates
            if p is not None and p.is_dir() and ((p / "adapter_config.json").is_file() or (p / "config.json").is_file())
        ),
        None,
    )
    if chosen is None:
        raise ConfigError(
            f"--from-run {str(folder)!r}: no best/, adapters/step_N/ or final/ folder with a model or adapter.",
            hint="pass MODEL --adapter DIR instead.",
        )
    data = config.dataset
    settings = RunSettings(
        run_dir=str(folder),
        stage=stage,
        name=name,
        model="",
        adapter=None,
        tokenizer=config.tokenizer,
        columns=dict(data.columns),
        chat=data.chat,
        system_prompt=data.system_prompt,
        checkpoint=str(chosen),
    )
    if (chosen / "adapter_config.json").is_file():
        settings.adapter = str(chosen)
        base: str | None = record.base_model or config.model
        if not base or stage_ref(str(base)) is not None:  # runs saved before base_model was recorded
            adapter_config = read_json(chosen / "adapter_config.json")
            base = adapter_config.get("base_model_name_or_path") if isinstance(adapter_config, dict) else None
        if not base or not isinstance(base, str):
            raise ConfigError(
                f"--from-run {str(folder)!r}: cannot tell the base model of adapter {str(chosen)!r}.",
                hint="pass MODEL --adapter DIR instead.",
            )
        settings.model = base
    else:  # a full model (training without LoRA)
        settings.model = str(chosen)
        if settings.tokenizer is None and not _has_tokenizer(chosen):
            settings.tokenizer = None if stage_ref(config.model) is not None else config.model
    return settings
