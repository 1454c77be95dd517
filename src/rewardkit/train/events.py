"""Trainer callbacks that `rewardkit train` adds to every stage: metrics to the trackers, one line per event.

Imported when a stage starts (it needs transformers).
"""

from __future__ import annotations

import math
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from transformers import Trainer, TrainerCallback

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments


class ForwardEvalMetrics(TrainerCallback):
    """Log the metrics other callbacks put into `metrics` during on_evaluate (best_checkpoint's eval_<metric> and
    its components) to every tracker of `report_to`.

    The Trainer logs its evaluation metrics *before* on_evaluate, so metrics a callback adds there drive
    metric_for_best_model but never reach TensorBoard, wandb or trackio. This callback, added after the user's,
    remembers which keys were logged and logs the rest through Trainer.log (the base method: GRPOTrainer.log
    would also flush its own pending training averages).
    """

    def __init__(self, trainer: Any) -> None:
        self._trainer = weakref.ref(trainer)
        self._logged: set[str] = set()
        self._forwarded: set[int] = set()  # steps whose save-time entries went to the trackers

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: object,
    ) -> None:
        if logs and any(str(k).startswith("eval_") for k in logs):
            self._logged = set(logs)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: object,
    ) -> None:
        trainer = self._trainer()
        if not metrics or trainer is None:
            return
        extra = {
            k: float(v)
            for k, v in metrics.items()
            if k not in self._logged and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        }
        if extra:
            history = state.log_history
            last = history[-1] if history else {}
            if last.get("step") == state.global_step and set(last) - {"epoch", "step"} == set(extra):
                history.pop()  # a callback's own entry of these metrics (best_checkpoint's): Trainer.log adds it again
            Trainer.log(trainer, extra)
        self._logged = set()  # after the log above too, which on_log records: the next evaluation starts afresh

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object) -> None:
        """An entry a callback appended to the log history at a save (best_checkpoint's reward-hacking alarm when
        the inference runs at saves, without an evaluation) reaches no tracker: log it through the Trainer."""
        trainer = self._trainer()
        history = state.log_history
        if trainer is None or not history or history[-1].get("step") != state.global_step:
            return
        entry = history[-1]
        found = {k: v for k, v in entry.items() if str(k).endswith("/reward_divergence")}
        if found and set(entry) - set(found) <= {"epoch", "step"} and state.global_step not in self._forwarded:
            self._forwarded.add(state.global_step)  # a stopped run saves that step again: forward it once
            history.pop()  # Trainer.log appends it again (same step and epoch), now with the trackers told
            Trainer.log(trainer, found)


# A training log's keys shown on its one line: (key, label); reward_std is shown beside reward.
LINE_KEYS = (("loss", "loss"), ("reward", "reward"), ("kl", "kl"), ("clip_ratio/region_mean", "clip"))
PROGRESS_EVERY = 30.0  # seconds between progress lines of one long evaluation or generation


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def log_line(logs: dict[str, Any], seconds_per_step: float | None) -> str:
    """The short form of one training log: loss, reward ± its std, KL and clip ratio when present, step time."""
    parts = []
    for key, label in LINE_KEYS:
        if key not in logs:
            continue
        text = f"{label}={_num(logs[key])}"
        if key == "reward" and "reward_std" in logs:
            text += f"±{_num(logs['reward_std'])}"
        parts.append(text)
    step_time = logs.get("step_time", seconds_per_step)
    if isinstance(step_time, (int, float)) and not isinstance(step_time, bool) and math.isfinite(step_time):
        parts.append(f"{step_time:.2f} s/step")
    return " ".join(parts)


class EventLines(TrainerCallback):
    """One line per stage event for output that is not a terminal, where progress bars are off: start, each
    training log (short form; the full records are in log_history.jsonl and trainer_state.json), the start and
    end of every evaluation and checkpoint inference (rows, elapsed time; a progress line every 30 s), each save
    and the end."""

    def __init__(self, label: str, say: Callable[[str], object]) -> None:
        self.label, self.say = label, say
        self._eval_started: float | None = None
        self._last_line = 0.0
        self._last_log: tuple[int, float] | None = None  # (step, time) of the last training log
        self._batches = 0  # prediction steps of the evaluation in progress
        self._max_steps = 0

    def _at(self, state: TrainerState) -> str:
        return f"stage {self.label}: step {state.global_step}/{state.max_steps}"

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        self._last_log, self._max_steps = (state.global_step, time.perf_counter()), state.max_steps
        if state.is_world_process_zero:
            start = f" from step {state.global_step}" if state.global_step else ""
            self.say(f"stage {self.label}: training {state.max_steps} steps{start} -> {args.output_dir}")

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: object,
    ) -> None:
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return  # evaluations have their own lines; the end-of-training summary is the finished line
        if any(str(k).startswith("eval_") for k in logs) or "train_runtime" in logs:
            return
        now = time.perf_counter()
        per_step = None
        if self._last_log is not None and state.global_step > self._last_log[0]:
            per_step = (now - self._last_log[1]) / (state.global_step - self._last_log[0])
        self._last_log = (state.global_step, now)
        self.say(f"{self._at(state)} {log_line(logs, per_step)}")

    def evaluation_begin(self, args: TrainingArguments, state: TrainerState, rows: int | None, how: str) -> None:
        """Called by the trainer's evaluate() (train/evaluation.py) before anything is generated."""
        self._eval_started = self._last_line = time.perf_counter()
        if state.is_world_process_zero:
            what = f"{rows} eval rows" if rows is not None else "the eval set"
            self.say(f"{self._at(state)} evaluation started: {what}, {how}")

    def on_prediction_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        self._batches += 1
        now = time.perf_counter()
        if state.is_world_process_zero and self._eval_started is not None and now - self._last_line >= PROGRESS_EVERY:
            self._last_line = now
            self.say(f"{self._at(state)} evaluating: {self._batches} batches, {now - self._eval_started:.0f} s")

    def inference(self, event: str, step: int, done: int, total: int, seconds: float, path: Path | None) -> None:
        """checkpoint_inference's watcher (callbacks.inference.InferenceWatcher)."""
        at = f"stage {self.label}: step {step}/{self._max_steps}"
        now = time.perf_counter()
        if event == "start":
            self._last_line = now
            self.say(f"{at} checkpoint_inference started: {total} rows")
        elif event == "end":
            self.say(f"{at} checkpoint_inference done: {done}/{total} rows in {seconds:.1f} s -> {path}")
        elif now - self._last_line >= PROGRESS_EVERY:
            self._last_line = now
            self.say(f"{at} checkpoint_inference: {done}/{total} rows, {seconds:.0f} s")

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: object,
    ) -> None:
        took = "" if self._eval_started is None else f" in {time.perf_counter() - self._eval_started:.1f} s"
        self._eval_started, self._batches = None, 0
        if state.is_world_process_zero:
            shown = {
                k: v
                for k, v in (metrics or {}).items()
                if isinstance(v, (int, float)) and "/" not in k and not k.endswith(("_runtime", "_per_second"))
            }
            text = ", ".join(f"{k}={v:.4g}" for k, v in shown.items()) or "no metrics"
            self.say(f"{self._at(state)} evaluated{took}: {text}")

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object) -> None:
        if state.is_world_process_zero:
            self.say(f"{self._at(state)} saved checkpoint-{state.global_step}")

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        if state.is_world_process_zero:
            self.say(f"stage {self.label}: finished at step {state.global_step}")
