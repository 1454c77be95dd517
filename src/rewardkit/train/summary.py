"""What a finished stage found: its selection metric, the best step and score, the best/ folder, the last score
(the fields of `StageResult`, the result of one stage, which lives here so the summary can name it).

Read from the Trainer's own state (metric_for_best_model) and, without one, from a best_checkpoint callback.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from rewardkit.composition.scoring import usage_line
from rewardkit.selection.checkpoint_score import interval_text
from rewardkit.selection.checkpoints import pick_best

if TYPE_CHECKING:
    from transformers import TrainerState, TrainingArguments


@dataclass
class StageResult:
    """What one stage produced."""

    name: str
    stage: str
    output_dir: str
    model: str  # what a later `@name` loads: the merged model, or the full fine-tuned one
    steps: int
    train_loss: float | None
    runtime_s: float
    metrics: dict[str, Any] = field(default_factory=dict)
    # What the run found (train/summary.py): the selection metric, its best step and score, the best/ folder.
    metric: str | None = None
    best_step: int | None = None
    best_score: float | None = None
    best_dir: str | None = None
    last_step: int | None = None
    last_score: float | None = None
    best_train_reward: float | None = None  # TRL's logged training reward at best_step (beside the held-out score)
    last_train_reward: float | None = None
    alarm: str | None = None  # best_checkpoint's reward-hacking alarm, when it fired
    tie: str | None = None  # the top score is shared (selection.stats.tie_note, as `rewardkit select` says it)
    best_interval: list[float] | None = None  # the best score's 95 % bootstrap interval (best_checkpoint)
    coverage: str | None = None  # at the best step: rows whose completions had the scored part (e.g. a reason)
    coverage_drops: list[str] = field(default_factory=list)  # that coverage fell between checkpoints
    resumed_from: str | None = None  # the checkpoint this run continued from
    reused: bool = False  # finished before: skipped by --resume, its outputs reused
    # What rewards that count their spending used in this process (a judge: requests, cache hits, tokens).
    reward_usage: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: dict) -> "StageResult":
        """The result a finished stage left in its rewardkit_stage.json."""
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in record.items() if k in known}, "reused": True})


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _last_logged(history: list[dict], metric: str) -> tuple[int | None, float | None]:
    for entry in reversed(history or []):
        if metric in entry:
            return entry.get("step"), _number(entry[metric])
    return None, None


def _ties_and_coverage(chooser: Any, history: list[dict], metric: str, best_step: int | None) -> dict[str, Any]:
    """StageResult's tie, best_interval, coverage and coverage_drops: best_checkpoint's, else the tie read from
    the Trainer's logged evaluations (the same sentence `rewardkit select` prints)."""
    from rewardkit.selection.checkpoint_score import CheckpointScore
    from rewardkit.selection.coverage import coverage_drops, coverage_text
    from rewardkit.selection.stats import tie_note

    if chooser is not None and chooser.checkpoints:
        scored = sorted(chooser.checkpoints.values(), key=lambda c: c.step)
        best = next((c for c in scored if c.step == best_step), None)
        interval = None
        if best is not None and best.ci_low is not None and best.ci_high is not None:
            interval = [best.ci_low, best.ci_high]
        return {
            "tie": chooser.tie,
            "best_interval": interval,
            "coverage": None if best is None else coverage_text(best),
            "coverage_drops": coverage_drops(scored),
        }
    logged = [
        CheckpointScore(f"step {e['step']}", "", e["step"], None, 0, {}, value, value)
        for e in history or []
        if metric in e and isinstance(e.get("step"), int) and (value := _number(e[metric])) is not None
    ]
    best = next((c for c in logged if c.step == best_step), None)
    return {"tie": tie_note(logged, best, "corpus")} if best is not None else {}


def _training_side(chooser: Any, best_step: int | None, last_step: int | None) -> dict[str, Any]:
    """The training reward TRL logged at the best and the last evaluated step, and best_checkpoint's
    reward-hacking alarm: the two signals side by side (StageResult's best/last_train_reward and alarm)."""
    if chooser is None:
        return {}
    by_step = {c.step: _number(getattr(c, "train_reward", None)) for c in chooser.checkpoints.values()}
    alarm = getattr(chooser, "divergence_found", None)
    return {
        "best_train_reward": by_step.get(best_step),
        "last_train_reward": by_step.get(last_step),
        "alarm": alarm.get("message") if isinstance(alarm, dict) else None,
    }


def _here(state: TrainerState, args: TrainingArguments) -> str | None:
    """The Trainer's best checkpoint in this run's folder (a resumed copy of a run folder names the original's)."""
    path = state.best_model_checkpoint
    return None if not path else os.path.join(str(args.output_dir), os.path.basename(os.path.normpath(path)))


def best_of(state: TrainerState, args: TrainingArguments, callbacks: list) -> dict[str, Any]:
    """StageResult's metric, best_step, best_score, best_dir, last_step and last_score fields, and beside them
    the training reward at those steps and the reward-hacking alarm (from a best_checkpoint callback)."""
    chooser = next((cb for cb in callbacks if hasattr(cb, "best_dir_state") and hasattr(cb, "checkpoints")), None)
    chosen_dir = (chooser.best_dir_state or {}) if chooser is not None else {}
    metric = getattr(args, "metric_for_best_model", None)
    if metric:
        metric = metric if metric.startswith("eval_") else f"eval_{metric}"
        best_step = getattr(state, "best_global_step", None)
        last_step, last_score = _last_logged(state.log_history, metric)
        best_dir = chosen_dir.get("path") if chosen_dir.get("step") == best_step else _here(state, args)
        return {
            "metric": metric,
            "best_step": best_step,
            "best_score": _number(state.best_metric),
            "best_dir": best_dir,
            "last_step": last_step,
            "last_score": last_score,
            **_training_side(chooser, best_step, last_step),
            **_ties_and_coverage(chooser, state.log_history, metric, best_step),
        }
    if chooser is None or not chooser.checkpoints:
        return {}
    agg, gib = chooser.params.aggregate, chooser.params.greater_is_better
    scored = sorted(chooser.checkpoints.values(), key=lambda c: c.step)
    best = pick_best(scored, agg, gib)
    best_step = None if best is None else best.step
    return {
        "metric": chooser.metric_name,
        "best_step": best_step,
        "best_score": None if best is None else _number(best.value(agg)),
        "best_dir": chosen_dir.get("path"),
        "last_step": scored[-1].step,
        "last_score": _number(scored[-1].value(agg)),
        **_training_side(chooser, best_step, scored[-1].step),
        **_ties_and_coverage(chooser, [], chooser.metric_name, best_step),
    }


def summary_lines(result: StageResult, config: str) -> list[str]:
    """The end-of-run block of one stage: what it found and the command that uses it."""
    head = f"{result.name} ({result.stage}): {result.steps} steps"
    if result.reused:
        head += " (finished earlier; reused)"
    elif result.resumed_from:
        head += f" (resumed from {result.resumed_from})"
    lines = [head]
    if result.metric and result.best_step is not None:
        score = "-" if result.best_score is None else f"{result.best_score:.4f}"
        ci = result.best_interval
        ci_text = f" (95% CI {interval_text(ci[0], ci[1])})" if ci and len(ci) == 2 else ""
        lines.append(f"  best: step {result.best_step}, {result.metric} = {score}{ci_text}")
        if result.tie:
            lines.append(f"  tie: {result.tie}")
        if result.last_step is not None:
            last = "-" if result.last_score is None else f"{result.last_score:.4f}"
            lines.append(f"  last: step {result.last_step}, {result.metric} = {last}")
        if result.coverage:
            lines.append(f"  {result.coverage} (at the best step)")
        lines += [f"  warning: {drop}" for drop in result.coverage_drops]
    else:
        lines.append("  best: not selected (no metric_for_best_model or best_checkpoint callback)")
    if result.best_train_reward is not None or result.last_train_reward is not None:

        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.4f}"

        lines.append(
            f"  training reward: {fmt(result.best_train_reward)} at the best step, "
            f"{fmt(result.last_train_reward)} at the last (TRL's logged `reward`)"
        )
    if result.alarm:
        lines.append(f"  reward-hacking alarm: {result.alarm}")
    for alias, usage in (result.reward_usage or {}).items():
        if isinstance(usage, dict):  # read back from a stage record: JSON, maybe edited
            lines.append(f"  spent: {usage_line(alias, usage)}")
    if result.best_dir:
        lines.append(f"  best model: {result.best_dir}")
    lines.append(f"  final model: {result.model}")
    if result.stage != "rm":
        lines.append(f"  next: rewardkit generate --from-run {result.output_dir} --input ROWS.jsonl --output OUT.jsonl")
    return lines
