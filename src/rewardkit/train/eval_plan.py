"""What a GRPO stage generates at each evaluation, and the preflight's warnings when it is wasteful.

TRL's GRPO evaluation samples `num_generations_eval` completions of every eval row, `per_device_eval_batch_size`
completions per generate call; `checkpoint_inference` on the eval split (`dataset: "@eval"`) generates the same
rows again, greedily and batched, and `best_checkpoint` turns them into the metric that picks the checkpoint.
When both run, each evaluation generates the rows twice. `plan()` decides (the stage's `trl_eval`, unset by
default): TRL's evaluation is left out when checkpoint_inference generates the eval split at evaluation and
metric_for_best_model is unset or a best_checkpoint metric; the trainer's evaluate() then runs only the callbacks
(train/evaluation.py). Light module: the stage config only.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from rewardkit.core.errors import ConfigError
from rewardkit.train.config import StageConfig
from rewardkit.train.precheck import GRPO_DEFAULTS

INFERENCE_BATCH = 16  # checkpoint_inference's default batch_size (callbacks.params)


@dataclass(frozen=True)
class EvalPlan:
    """What each evaluation of a stage generates."""

    evaluates: bool  # eval_strategy is not "no"
    trl_generates: bool  # TRL's GRPO evaluation runs (False: evaluate() runs only the callbacks)
    inference: dict[str, Any] | None  # the checkpoint_inference entry generating the eval split at evaluation
    metric: str | None  # metric_for_best_model with its eval_ prefix
    best_metrics: tuple[str, ...]  # the eval_<metric> names best_checkpoint callbacks insert


def _metric(trainer: dict[str, Any]) -> str | None:
    metric = trainer.get("metric_for_best_model")
    if metric is None and trainer.get("load_best_model_at_end"):
        metric = "loss"  # TrainingArguments' own default then
    if not isinstance(metric, str):
        return None
    return metric if metric.startswith("eval_") else f"eval_{metric}"


def _eval_split(stage: StageConfig, dataset: Any) -> bool:
    """Whether a checkpoint_inference dataset is the stage's eval split: '@eval', or the eval_file itself."""
    if dataset == "@eval":
        return True
    eval_file = stage.dataset.eval_file
    return (
        isinstance(dataset, str) and eval_file is not None and os.path.realpath(dataset) == os.path.realpath(eval_file)
    )


def plan(stage: StageConfig) -> EvalPlan:
    """The stage's evaluation plan (see the module docstring)."""
    t = stage.trainer
    evaluates = str(t.get("eval_strategy", "no")) != "no"
    inference = next(
        (
            cb
            for cb in stage.callbacks
            if cb.get("name") == "checkpoint_inference"
            and _eval_split(stage, cb.get("dataset"))
            and cb.get("on", "evaluate") in ("evaluate", "both")
        ),
        None,
    )
    best = tuple(
        (m if m.startswith("eval_") else f"eval_{m}")
        for m in (str(cb.get("metric", "score")) for cb in stage.callbacks if cb.get("name") == "best_checkpoint")
    )
    metric = _metric(t)
    if stage.stage != "grpo" or not evaluates:
        trl = evaluates
    elif stage.trl_eval is not None:
        trl = stage.trl_eval
    else:
        trl = not (inference is not None and (metric is None or metric in best))
    return EvalPlan(evaluates, trl, inference, metric, best)


def check_plan(stage: StageConfig, where: str) -> EvalPlan:
    """The plan, refusing `trl_eval: false` with a metric_for_best_model that only TRL's evaluation computes."""
    p = plan(stage)
    if p.evaluates and not p.trl_generates and p.metric is not None and p.metric not in p.best_metrics:
        raise ConfigError(
            f"{where}: stage {stage.label!r}: trainer.metric_for_best_model={p.metric!r} comes from GRPO's own "
            "evaluation, which trl_eval: false turns off.",
            hint="drop trl_eval: false, or select with best_checkpoint (metric_for_best_model: eval_score).",
        )
    return p


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def evaluations(stage: StageConfig, train_rows: int) -> int | None:
    """About how many evaluations the run makes (None: not known from the config and the data size)."""
    t = {**GRPO_DEFAULTS, **stage.trainer}
    if str(t.get("eval_strategy")) != "steps":
        return None
    world = _int(os.environ.get("WORLD_SIZE", "1") or 1, 1)
    steps = _int(t.get("max_steps"), -1)
    if steps <= 0:
        per_step = _int(t["per_device_train_batch_size"], 8) * world * _int(t["gradient_accumulation_steps"], 1)
        epochs = float(t.get("num_train_epochs", 3) or 3)
        steps = math.ceil(epochs * math.ceil(train_rows * _int(t["num_generations"], 8) / max(1, per_step)))
    every = t.get("eval_steps") or t.get("logging_steps") or 500
    every = math.ceil(float(every) * steps) if float(every) < 1 else int(every)
    return max(1, math.ceil(steps / max(1, every)))


def warnings(stage: StageConfig, eval_rows: int, train_rows: int) -> list[str]:
    """The preflight's warnings for a GRPO stage whose evaluation generates the same rows twice or one prompt
    per generate call, each with the estimate of what it costs."""
    p = plan(stage)
    if stage.stage != "grpo" or not p.evaluates or eval_rows < 1:
        return []
    t = {**GRPO_DEFAULTS, **stage.trainer}
    world = _int(os.environ.get("WORLD_SIZE", "1") or 1, 1)
    gens = _int(t["num_generations_eval"] if t["num_generations_eval"] is not None else t["num_generations"], 8)
    batch = _int(t["per_device_eval_batch_size"], 8) * world
    trl_calls = math.ceil(eval_rows * gens / max(1, batch))
    prompts_per_call = max(1, batch // max(1, gens))
    bs = _int((p.inference or {}).get("batch_size", INFERENCE_BATCH), INFERENCE_BATCH)
    own_calls = math.ceil(eval_rows / max(1, bs))
    n = evaluations(stage, train_rows)
    over = f" (about {n} evaluations in this run)" if n else ""
    trl_text = (
        f"GRPO's evaluation samples {eval_rows} prompts x {gens} completions in {trl_calls} generate calls of "
        f"{batch} completions ({prompts_per_call} prompt(s) per call: per_device_eval_batch_size {batch // world} x "
        f"{world} process(es) / num_generations_eval {gens})"
    )
    out = []
    if p.trl_generates and p.inference is not None:
        why = "trl_eval: true" if stage.trl_eval else f"metric_for_best_model {p.metric!r} comes from it"
        out.append(
            f"stage {stage.label!r}: each evaluation generates the {eval_rows} eval rows twice ({why}): {trl_text}, "
            f"then checkpoint_inference generates them again in {own_calls} calls of {bs}: {trl_calls + own_calls} "
            f"generate calls per evaluation where {own_calls} would do{over}. Hint: leave trl_eval unset and "
            "select with best_checkpoint (metric_for_best_model: eval_score), so each checkpoint's rows are "
            "generated once."
        )
    elif p.trl_generates and prompts_per_call == 1 and eval_rows > 1:
        out.append(
            f"stage {stage.label!r}: {trl_text}: one prompt per generate call, {trl_calls} calls per "
            f"evaluation{over}. Hint: raise per_device_eval_batch_size to a multiple of {gens} (e.g. {gens * 8})."
        )
    if p.inference is not None and bs == 1 and eval_rows > 1:
        out.append(
            f"stage {stage.label!r}: checkpoint_inference generates one prompt per generate call ({eval_rows} "
            f"calls per evaluation{over}). Hint: leave batch_size at its default ({INFERENCE_BATCH})."
        )
    if not p.trl_generates and p.inference is None:
        out.append(
            f"stage {stage.label!r}: trl_eval: false and no checkpoint_inference generates the eval split at "
            'evaluation: evaluations compute nothing. Hint: add checkpoint_inference with dataset: "@eval".'
        )
    return out
