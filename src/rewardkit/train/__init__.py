"""Training runs from one config: SFT, reward modelling, DPO and GRPO with TRL, alone or as a pipeline.

Light package: torch, transformers, trl and peft are imported only when a run starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from pathlib import Path

    from rewardkit.train.config import StageConfig
    from rewardkit.train.summary import StageResult

__all__ = ["finish_distributed", "load", "run"]


def run(
    config: str | Path | dict,
    overrides: list[str] | None = None,
    smoke: bool = False,
    say: Callable[[str], object] | None = None,
    resume: str | None = None,
    overwrite: bool = False,
    output: str | Path | None = None,
) -> list[StageResult]:
    """Run a stage or pipeline config (YAML/TOML/JSON path or dict) with 'key=value' overrides.

    `smoke=True`: the same config offline on tiny local models, 2 steps per stage (`rewardkit train --smoke`).
    `resume="latest"` (or a checkpoint-N path) continues an interrupted run; `overwrite=True` starts over in
    folders that hold a run (without either, such a folder is refused).
    `output`: where the run writes (its `output_dir`; with `smoke`, the smoke folder instead of runs/smoke/<name>).
    """
    from rewardkit.train.pipeline import run as _run

    return _run(config, overrides, smoke=smoke, say=say, resume=resume, overwrite=overwrite, output=output)


def load(config: str | Path | dict, overrides: list[str] | None = None) -> list[StageConfig]:
    """The validated stage configs of a file or dict, without running anything."""
    from rewardkit.train.config import load_stages

    return load_stages(config, overrides)[0]


def finish_distributed() -> None:
    """End a multi-process run cleanly: wait for every rank, destroy the process group (call it last)."""
    from rewardkit.train.pipeline import finish_distributed as _finish

    _finish()
