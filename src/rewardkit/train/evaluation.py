"""The trainer class `rewardkit train` builds: its evaluate() announces itself and, when the eval plan says so
(train/eval_plan.py), runs only the callbacks instead of TRL's generation-based GRPO evaluation.

With `callbacks_only`, evaluate() hands an empty metrics dict to the callbacks' on_evaluate: checkpoint_inference
generates the eval rows once, best_checkpoint inserts eval_<metric>, and the Trainer picks the best checkpoint by
it (metric_for_best_model) exactly as after TRL's evaluation. Imported when a stage is built (TRL is loaded).
"""

from __future__ import annotations

from typing import Any


class AnnouncedEvaluation:
    """Mixin over a TRL trainer: every callback with `evaluation_begin(args, state, rows, how)` hears of an
    evaluation before it starts; `callbacks_only` replaces TRL's evaluation by the callbacks' on_evaluate."""

    callbacks_only = False
    callback_handler: Any
    args: Any
    state: Any
    control: Any
    eval_dataset: Any

    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        data = eval_dataset if eval_dataset is not None else self.eval_dataset
        rows = len(data) if hasattr(data, "__len__") and not isinstance(data, dict) else None
        how = "callbacks only (TRL's generation-based evaluation off)" if self.callbacks_only else "TRL evaluation"
        for callback in self.callback_handler.callbacks:
            begin = getattr(callback, "evaluation_begin", None)
            if callable(begin):
                begin(self.args, self.state, rows, how)
        if not self.callbacks_only:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)  # type: ignore[misc]
        metrics: dict[str, float] = {}
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def trainer_class(trainer_cls: type, callbacks_only: bool) -> type:
    """`trainer_cls` with AnnouncedEvaluation mixed in (same name, so TRL's model card and logs read alike)."""
    return type(trainer_cls.__name__, (AnnouncedEvaluation, trainer_cls), {"callbacks_only": callbacks_only})
