"""Trainer callbacks that `rewardkit train` adds to every stage: metrics to the trackers, one line per event.

Imported when a stage starts (it needs transformers).
"""

from __future__ import annotations

import math
import weakref
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
        self._logged = set()
        if extra:
            Trainer.log(trainer, extra)

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


class EventLines(TrainerCallback):
    """One line per stage event (start, evaluation, save, end) for output that is not a terminal, where
    progress bars are off (a log file would otherwise get every bar update)."""

    def __init__(self, label: str, say: Callable[[str], object]) -> None:
        self.label, self.say = label, say

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        if state.is_world_process_zero:
            start = f" from step {state.global_step}" if state.global_step else ""
            self.say(f"stage {self.label}: training {state.max_steps} steps{start} -> {args.output_dir}")

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: object,
    ) -> None:
        if state.is_world_process_zero and metrics:
            shown = {
                k: v
                for k, v in metrics.items()
                if isinstance(v, (int, float)) and "/" not in k and not k.endswith(("_runtime", "_per_second"))
            }
            text = ", ".join(f"{k}={v:.4g}" for k, v in shown.items())
            self.say(f"stage {self.label}: step {state.global_step}/{state.max_steps} evaluated: {text}")

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object) -> None:
        if state.is_world_process_zero:
            self.say(
                f"stage {self.label}: step {state.global_step}/{state.max_steps} saved checkpoint-{state.global_step}"
            )

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        if state.is_world_process_zero:
            self.say(f"stage {self.label}: finished at step {state.global_step}")
