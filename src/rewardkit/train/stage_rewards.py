"""A GRPO stage's rewards: `@stage` reward models resolved to earlier stages' folders, then composed."""

from __future__ import annotations

from typing import Any

from rewardkit.api import compose
from rewardkit.composition.composed import Composed
from rewardkit.core.errors import ConfigError, closest
from rewardkit.models import spec_models
from rewardkit.train.config import StageConfig
from rewardkit.train.preflight import load_spec_quietly


def handoff_dir(stage: StageConfig) -> str:
    """What a later `@name` loads: merged/ when the stage trains an adapter, else final/ (run_stage writes it)."""
    return str(stage.folder / ("merged" if stage.peft is not None else "final"))


def reward_spec(stage: StageConfig, earlier: list[StageConfig], where: str) -> dict[str, Any] | str | None:
    """The stage's `rewards:` with each reward model reference `"@name"` replaced by that earlier rm stage's model.

    Every parameter marked `ModelRef` is looked at (reward_model's `model`, a plugin's model). Resolved before any
    stage trains (the path is known from the config), so an unknown, later or non-rm stage is a ConfigError in the
    preflight, and callbacks given `@rewards` get the resolved spec too.
    """
    if stage.stage != "grpo" or stage.rewards is None:
        return stage.rewards
    spec = load_spec_quietly(stage.rewards)
    if spec is None:
        return stage.rewards  # compose reports it with the stage's name
    stages = {s.label: s for s in earlier}
    changed = False
    for m in spec_models(spec):
        if m.stage is None:
            continue
        target = stages.get(m.stage)
        key = f"rewards.{m.alias}.{m.field} {m.value!r}"
        if target is None:
            raise ConfigError(
                f"{where}: stage {stage.label!r}: {key} does not name an earlier stage."
                f"{closest(m.stage, list(stages))}",
                hint=f"earlier stages are {list(stages) or 'none'}; a reward model comes from an earlier `stage: rm`.",
            )
        if target.stage != "rm":
            raise ConfigError(
                f"{where}: stage {stage.label!r}: {key} is a {target.stage} stage, not a reward model.",
                hint="name a `stage: rm` (its merged sequence classifier).",
            )
        spec.rewards[m.alias][m.field] = handoff_dir(target)
        changed = True
    return spec.to_dict() if changed else stage.rewards


def compose_rewards(stage: StageConfig, where: str, spec: dict[str, Any] | str | None = None) -> Composed | None:
    if stage.stage != "grpo":
        return None
    source = stage.rewards if spec is None else spec
    try:
        if source is None:  # StageConfig's validator requires it for grpo; a model_construct()ed stage may lack it
            raise ConfigError("stage grpo needs 'rewards'", hint="a compose spec, a spec file or a preset name.")
        return compose(source, name="reward")
    except ConfigError as exc:
        raise exc.within(where, f"stage {stage.label!r}", "rewards") from None
