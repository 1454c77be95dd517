"""What each stage of a run does with the folder it finds: start, continue from a checkpoint, or reuse.

Decided before anything is prepared or written, so a refusal leaves every folder as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rewardkit.core.errors import ConfigError
from rewardkit.train.config import StageConfig
from rewardkit.train.resume import (
    LATEST,
    RECORD,
    checkpoint_arg,
    checkpoints,
    finished_record,
    holds_run,
    latest_complete,
    overwrite,
    set_aside_incomplete,
)


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


def plan_stages(
    stages: list[StageConfig],
    where: str,
    resume: str | None,
    fresh: bool,
    say: Callable[[str], object],
    main: bool = True,
) -> dict[str, StagePlan]:
    """Each stage's plan; `resume` is LATEST or a checkpoint path; `fresh` (--overwrite) deletes earlier runs.

    Every rank computes the same plan from the folders; only the main process (`main`) moves or deletes.
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
        elif holds_run(folder):
            if not fresh:
                raise ConfigError(
                    f"{where}: stage {stage.label!r}: {folder} already holds a run ({_what(folder)}).",
                    hint="add --resume to continue it (finished stages are kept), or --overwrite to "
                    "delete it and start over.",
                )
            if main:
                overwrite(folder, say)
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
