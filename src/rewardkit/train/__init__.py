"""Training runs from one config: SFT, reward modelling, DPO and GRPO with TRL, alone or as a pipeline.

Light package: torch, transformers, trl and peft are imported only when a run starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from rewardkit.train.config import StageConfig
    from rewardkit.train.pipeline import finish_distributed as finish_distributed
    from rewardkit.train.pipeline import run as run

__all__ = ["finish_distributed", "load", "run"]


def load(config: str | Path | dict, overrides: list[str] | None = None) -> list[StageConfig]:
    """The validated stage configs of a file or dict, without running anything."""
    from rewardkit.train.config import load_stages

    return load_stages(config, overrides)[0]


def __getattr__(name: str) -> object:
    # `run` and `finish_distributed` are train.pipeline's: loaded on first use, like rewardkit's own exports.
    if name in ("run", "finish_distributed"):
        from rewardkit.train import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'rewardkit.train' has no attribute {name!r}")
