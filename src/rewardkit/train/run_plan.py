"""What each stage of a run does with the folder it finds: start, continue from a checkpoint, or reuse.

Decided before anything is prepared or written, so a refusal leaves every folder as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rewardkit.core.errors import ConfigError
from rewardkit.core.output_dirs import OUTPUT_MARKER
from rewardkit.core.written import RECORD as RECORD_FILE
from rewardkit.train.config import StageConfig
from rewardkit.train.config_change import changed_keys, split_changes
from rewardkit.train.resume import (
    LATEST,
    RECORD,
    checkpoint_arg,
    checkpoints,
    finished_record,
    holds_run,
    latest_complete,
    set_aside_incomplete,
    started_settings,
)
from rewardkit.train.run_folder import RunNames, overwrite, refuse_foreign, refuse_links, stage_names
from rewardkit.train.run_lock import LOCK

# A folder for a new run holds nothing but our lock (and the marker of the command that made it, e.g. --smoke).
_EMPTY = RunNames(frozenset({LOCK, OUTPUT_MARKER, RECORD_FILE}), frozenset())


@dataclass
class StagePlan:
    """One stage's start: `record` set = finished before (reuse it); `checkpoint` = continue from it."""

    record: dict | None = None
    checkpoint: Path | None = None


def _what(folder: Path) -> str:
    if (folder / RECORD).exists():
        return "a finished stage"
    steps = list(checkpoints(folder))
    return f"checkpoints up to step {steps[-1]}" if steps else "a started stage"


def _same_config(record: dict, stage: StageConfig) -> bool:
    now = json.loads(json.dumps(stage.model_dump(), default=str))
    return record.get("config") == now


def _explicit(stage: StageConfig) -> Any:
    """trainer.resume_from_checkpoint as the user set it (None: not set)."""
    value = stage.trainer.get("resume_from_checkpoint")
    return None if value in (None, False, "") else value


def check_changes(stage: StageConfig, where: str, now: dict | None, accept: bool, say: Callable[[str], object]) -> None:
    """Compare the settings the interrupted run recorded with `now`: refuse a change to what is trained unless
    `accept` (--accept-config-change), say any other change in one line."""
    if now is None:
        return
    before = started_settings(stage.folder)
    label = stage.label
    if before is None:
        say(f"resume: stage {label!r}: the interrupted run recorded no config, so changes since are not checked.")
        return
    trained, other = split_changes(changed_keys(before, now))
    if trained and not accept:
        raise ConfigError(
            f"{where}: stage {label!r}: the config changed what is trained since the interrupted run in "
            f"{stage.folder}: {', '.join(trained)}.",
            hint="undo the change to continue that run, add --accept-config-change to continue it with the new "
            "values, or --overwrite to start over.",
        )
    if trained:
        say(f"resume: stage {label!r} continues with changed training settings (accepted): {', '.join(trained)}.")
    if other:
        say(f"resume: stage {label!r}: changed since the interrupted run (not what is trained): {', '.join(other)}.")


def _refuse_reading_from(stage: StageConfig, folder: Path, where: str) -> None:
    """--overwrite must not delete what the stage is about to read: `model: runs/x/merged` with output_dir runs/x
    deleted the earlier run's merged model, then failed on the missing model."""
    root = folder.resolve()
    data = stage.dataset
    inputs = [
        ("model", stage.model),
        ("tokenizer", stage.tokenizer),
        ("tokenizer.chat_template", stage.chat_template),
        ("dataset.path", data.path),
        ("dataset.eval_file", data.eval_file),
    ]
    for key, value in inputs:
        if not isinstance(value, str) or not value.strip() or value.startswith("@"):
            continue
        try:  # a hub id or a template's text is no path here
            path = Path(value).expanduser()
            inside = path.exists() and (path.resolve() == root or root in path.resolve().parents)
        except (OSError, ValueError):
            continue
        if inside:
            raise ConfigError(
                f"{where}: --overwrite would delete {folder}, but the stage reads its {key} {value!r} from it.",
                hint="nothing was deleted; copy it out of the run folder and point the config at the copy, or give "
                "the stage another output_dir.",
            )


def plan_stages(
    stages: list[StageConfig],
    where: str,
    resume: str | None,
    fresh: bool,
    say: Callable[[str], object],
    main: bool = True,
    settings: dict[str, dict] | None = None,
    accept_change: bool = False,
) -> dict[str, StagePlan]:
    """Each stage's plan; `resume` is LATEST or a checkpoint path; `fresh` (--overwrite) deletes earlier runs.

    Every rank computes the same plan from the folders; only the main process (`main`) moves or deletes. A
    folder holding entries no run wrote is refused for a new run and for --overwrite; a symlink among a run's
    entries is refused always (train/run_folder.py). `settings` ({label: what the run records}) is compared
    with the interrupted run's when a stage continues from a checkpoint (`accept_change`: --accept-config-change).
    """
    if resume is not None and fresh:
        raise ConfigError(
            "--resume and --overwrite contradict each other.",
            hint="--resume continues the earlier run, --overwrite deletes it and starts over; give one.",
        )
    plans: dict[str, StagePlan] = {}
    path_used = False
    for stage in stages:
        if stage.output_dir is None:  # load_stages always fills it in; a hand-built StageConfig may not
            raise ConfigError(
                f"{where}: stage {stage.label!r} has no output_dir.",
                hint="set output_dir, or load the config with load_stages (it defaults to runs/<name>).",
            )
        folder = Path(stage.output_dir)
        explicit = _explicit(stage)
        plan = StagePlan()
        at = f"{where}: stage {stage.label!r}"
        names = stage_names(stage)
        if main:  # the other ranks of a launch follow its decision (it refuses, the launch fails)
            refuse_links(folder, names, at)
        running = holds_run(folder)
        if not running and main:
            refuse_foreign(
                folder,
                _EMPTY,
                at,
                "training would write into",
                "pick a new or empty output_dir (or move that entry out of the folder).",
            )
        if resume is not None and explicit is None:
            record = finished_record(folder)
            if record is not None:
                if not _same_config(record, stage):
                    say(
                        f"resume: stage {stage.label!r} finished earlier with a different config; its outputs in "
                        f"{folder} are reused as they are (--overwrite retrains it)."
                    )
                else:
                    say(f"resume: stage {stage.label!r} finished earlier; reusing {record['model']}.")
                plan.record = record
            elif resume != LATEST and not path_used:
                plan.checkpoint = checkpoint_arg(resume, folder, where, stage.label)
                path_used = True
            else:
                plan.checkpoint = latest_complete(folder, say)
                if plan.checkpoint is None and holds_run(folder):
                    say(f"resume: stage {stage.label!r} has no complete checkpoint in {folder}; it starts from step 0.")
        elif explicit is not None:
            # The config's own trainer.resume_from_checkpoint: the same as --resume PATH (True: the latest).
            if explicit is True or str(explicit).strip().lower() == "true":
                plan.checkpoint = latest_complete(folder, say)
            else:
                plan.checkpoint = checkpoint_arg(explicit, folder, where, stage.label)
        elif running:
            if not fresh:
                raise ConfigError(
                    f"{where}: stage {stage.label!r}: {folder} already holds a run ({_what(folder)}).",
                    hint="add --resume to continue it (finished stages are kept), or --overwrite to "
                    "delete it and start over.",
                )
            if main:
                _refuse_reading_from(stage, folder, at)
                overwrite(folder, names, at, say)
        if plan.checkpoint is not None and plan.checkpoint.parent.resolve() == folder.resolve():
            check_changes(stage, where, (settings or {}).get(stage.label), accept_change, say)
        if plan.checkpoint is not None:
            say(f"resume: stage {stage.label!r} continues from {plan.checkpoint}.")
            step = (
                int(plan.checkpoint.name.rsplit("-", 1)[-1]) if plan.checkpoint.name.startswith("checkpoint-") else None
            )
            if main and step is not None and plan.checkpoint.parent.resolve() == folder.resolve():
                set_aside_incomplete(folder, step, say)
        plans[stage.label] = plan
    if resume is not None and all(p.record is not None for p in plans.values()):
        say("resume: every stage had finished; nothing to train.")
    return plans
