"""best_checkpoint's statistics and reward-hacking alarm: the pick under the policy with its bootstrap intervals,
and the alarm (training reward up, held-out score down over the last K evaluations).

The two signals come from `rewardkit.selection.training_reward` (TRL's logged `reward` near each evaluated step, and the
held-out score best_checkpoint computed). The alarm fires once per run: a warning in the Python log, an entry
`eval_<metric>/reward_divergence` in the Trainer's log history (trainer_state.json) and, at an evaluation, in its
metrics; `rewardkit train` forwards both to the report_to trackers (train/events.ForwardEvalMetrics: a
Trainer never passes what a callback adds), and `divergence` in scores.json. With `divergence_stop`
it sets `control.should_training_stop` once the step is saved, so the last checkpoint is kept.
"""

from __future__ import annotations

from typing import Any

from rewardkit.callbacks.best_state import BestState
from rewardkit.callbacks.common import logger, scored_step
from rewardkit.callbacks.params import BestCheckpointParams
from rewardkit.core.errors import ConfigError
from rewardkit.selection.checkpoints import CheckpointScore, decide
from rewardkit.selection.training_reward import attach, divergence


def check_alarm_params(p: BestCheckpointParams) -> None:
    """The best_checkpoint parameters that only make sense together."""
    if p.divergence_stop and p.divergence_warn is None:
        raise ConfigError(
            "callback 'best_checkpoint': divergence_stop needs divergence_warn.",
            hint="divergence_warn: 3 (the last 3 evaluations).",
        )
    if p.policy == "earliest_tied" and p.bootstrap < 1:
        raise ConfigError(
            "callback 'best_checkpoint': policy earliest_tied needs the bootstrap intervals.",
            hint="bootstrap: 1000 (or policy: best).",
        )


class DivergenceAlarm(BestState):
    """Mixin for best_checkpoint (`self.params`, `self.checkpoints`, `self.metric_name`).

    `_alarm_check` runs on the main process, which alone holds the scores; its finding travels in the broadcast
    result, and `_alarm_apply` runs on every rank so all of them stop at the same step.
    """

    divergence_found: dict | None = None
    _control: Any = None  # the Trainer's one TrainerControl, kept from the events that pass it

    def _decide(self) -> list[CheckpointScore]:
        """Join the training reward, bootstrap, and set self.pick (under the policy) and self.tie."""
        p = self.params
        cps = self._by_step()
        self._join_training_reward(self.state)
        self.pick, tie = decide(
            self.composed,
            cps,
            p.aggregate,
            p.greater_is_better,
            policy=p.policy,
            resamples=p.bootstrap,
            seed=p.seed,
        )
        if tie and tie != self.tie:
            logger.info("best_checkpoint: %s", tie)
        self.tie = tie
        return cps

    def _by_step(self) -> list[CheckpointScore]:
        return sorted(self.checkpoints.values(), key=scored_step)

    def _join_training_reward(self, state: Any) -> None:
        """Fill each scored checkpoint's train_reward from the Trainer's log history."""
        if state is not None and getattr(state, "log_history", None):
            attach(list(self.checkpoints.values()), state.log_history)

    def _alarm_check(self, state: Any) -> dict | None:
        """A new divergence over the last K evaluations (main process), else None; fires once per run."""
        k = self.params.divergence_warn
        if k is None or self.divergence_found is not None:
            return None
        self._join_training_reward(state)
        agg = self.params.aggregate
        cps = self._by_step()
        found = divergence(
            [(scored_step(c), c.value(agg), c.train_reward) for c in cps], k, self.params.greater_is_better
        )
        if found is not None:
            found = {**found, "step": state.global_step, "stopped": self.params.divergence_stop}
        return found

    def _alarm_apply(self, args: Any, state: Any, found: dict) -> None:
        """Record and announce the alarm (main process), and on every rank ask for save-then-stop if wanted."""
        self.divergence_found = found
        if state.is_world_process_zero:
            logger.warning(
                "best_checkpoint: reward-hacking alarm at step %d: %s.%s",
                state.global_step,
                found["message"],
                " Stopping after this step's save (divergence_stop)."
                if found["stopped"]
                else " Hint: read the completions; divergence_stop: true stops the run.",
            )
        last = state.log_history[-1] if state.log_history else {}
        if not (last.get("step") == state.global_step and any(str(k).startswith("eval_") for k in last)):
            # At a save (no evaluation): an entry of its own. At an evaluation, _insert puts it into this step's
            # metrics and their log entry (and so, under `rewardkit train`, into the trackers).
            state.log_history.append(
                {
                    f"{self.metric_name}/reward_divergence": 1.0,
                    "epoch": state.epoch,
                    "step": state.global_step,
                }
            )
        if state.is_world_process_zero:
            self._write_record(args)
        if found["stopped"] and self._control is not None:
            if str(getattr(args, "save_strategy", "no")).rsplit(".", 1)[-1].lower() != "no":
                self._control.should_save = True  # the Trainer saves after on_evaluate, then stops
            self._control.should_training_stop = True
