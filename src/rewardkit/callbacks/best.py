"""`best_checkpoint`: score each step's inference file, feed eval_<metric> to the Trainer, keep the best adapter.

The record `<args.output_dir>/<sidecar>/scores.json`:

    {"metric": "eval_score", "aggregate": "corpus", "greater_is_better": true, "completion_key": null,
     "expression": "...", "spec": {...},
     "policy": "best", "bootstrap": {"resamples", "seed"},
     "checkpoints": [{"name", "file", "step", "epoch", "count", "dropped", "components": {alias: mean}, "corpus",
                      "item", "score", "ci_low", "ci_high", "diff_low", "diff_high", "tied_with_best",
                      "train_reward", "train_rewards", "row_scores"}],
     "best": <the policy's pick> | null, "tie": <sentence> | null, "divergence": <the alarm> | null,
     "best_dir": {"path": "best", "step": N, "source": "<folder copied>"} | null}

It is rebuilt on train begin from the files of steps <= the (resumed) global step, so a resume neither loses
nor duplicates entries. Checkpoints are compared on the same rows: files of one run share their row ids; if
they do not (a validation set changed between a run and its resume), a warning says so and every checkpoint
is scored on the ids all files share (`count`; `dropped` = rows of its file left out).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from rewardkit.api import compose, load_compose_spec
from rewardkit.callbacks.alarm import DivergenceAlarm, check_alarm_params
from rewardkit.callbacks.best_folder import BestFolder
from rewardkit.callbacks.best_record import BestRecord, file_sha256
from rewardkit.callbacks.common import (
    WarnsOnce,
    broadcast_from_main,
    build_params,
    check_dirs,
    logger,
    resolve_dir,
    sidecar_dir,
)
from rewardkit.callbacks.params import BestCheckpointParams
from rewardkit.core.errors import ConfigError, RewardkitError
from rewardkit.selection.checkpoints import CheckpointScore, score_checkpoint
from rewardkit.selection.inference_files import (
    keep_rows,
    load_inference,
    normalize_records,
    step_file_name,
)

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from rewardkit.callbacks.inference import CheckpointInferenceCallback

_LINK_HINT = (
    "list checkpoint_inference (on='evaluate' or 'both', same sidecar) before best_checkpoint, or link "
    "them in any order with rewardkit.callbacks.link_callbacks(callbacks) (`rewardkit train` does)"
)


class BestCheckpointCallback(TrainerCallback, WarnsOnce, DivergenceAlarm, BestFolder, BestRecord):
    """Score every inference file with a compose spec, insert eval_<metric>, copy the best adapter to best/.

    Partner: the `checkpoint_inference` writing the same sidecar. Linked (`attach(inference)`, or
    `rewardkit.callbacks.link_callbacks(callbacks)` for a whole list, which `rewardkit train` calls), it gets
    each step's records in-process as soon as they exist, so the two may come in either order. Unlinked, it
    scores the step files it finds in the sidecar: list checkpoint_inference first then, or a step is scored
    only at the next save (or at train end). Either way it must come before `EarlyStoppingCallback`, which
    reads eval_<metric> in its own on_evaluate. With `metric_for_best_model="eval_<metric>"` the Trainer
    (best_model_checkpoint, save_total_limit protection, early stopping) ranks checkpoints by the same score;
    ties go to the earlier step in both. Scoring runs on the main process while the other ranks wait for the
    broadcast result: keep the validation set small when the spec is slow (BERTScore). Eval metrics added in
    on_evaluate are not seen by report_to integrations; they go to state.log_history (trainer_state.json) and
    the `rewardkit.callbacks` logger. `top_k` deletes only adapter folders lora_save marked as its own.

    Example:
    >>> from rewardkit.callbacks.inference import CheckpointInferenceCallback
    >>> cb = BestCheckpointCallback(spec={"rewards": {"em": {"use": "exact_match"}}}, top_k=2)
    >>> inference = CheckpointInferenceCallback(dataset=[{"prompt": "2+2=", "answer": "4"}],
    ...                                         reference_columns=["answer"])
    >>> cb.attach(inference)  # or rewardkit.callbacks.link_callbacks([cb, inference, ...])
    >>> cb.partner is inference
    True
    """

    Params = BestCheckpointParams

    takes_validated_params = True  # the builder hands over the validated BestCheckpointParams

    def __init__(self, params: BestCheckpointParams | None = None, /, **kwargs: object) -> None:
        self.params = p = build_params(BestCheckpointParams, params, kwargs, "best_checkpoint")
        check_dirs(p, "best_checkpoint", relative_only=("sidecar", "best_dir"), run_dirs=("adapters_dir",))
        taken = {os.path.normpath(p.sidecar): "sidecar", os.path.normpath(p.adapters_dir or "adapters"): "adapters_dir"}
        if os.path.normpath(p.best_dir) in taken:  # the best copy replaces best_dir whole: it would wipe that folder
            raise ConfigError(
                f"{p.best_dir!r} is also the {taken[os.path.normpath(p.best_dir)]} folder, which copying the best "
                "adapter would replace.",
                owner="callback 'best_checkpoint'",
                path="best_dir",
                hint="keep best_dir: best.",
            )
        self.composed = compose(p.spec)
        # recorded in scores.json, so `rewardkit select` can rescore alike (inline callables as module:name)
        self.spec = load_compose_spec(p.spec).to_dict(portable=True)
        self.metric_name = p.metric if p.metric.startswith("eval_") else f"eval_{p.metric}"
        self.partner: CheckpointInferenceCallback | None = None
        self.checkpoints: dict[int, CheckpointScore] = {}
        self.best_dir_state: dict | None = None
        self.args: Any = None
        self._ids: set[str] | None = None  # the row ids every checkpoint is scored on
        self._scored: set[int] = set()
        self._checked = False
        self.state: Any = None  # the Trainer's state: its log_history holds the training reward
        self.pick: CheckpointScore | None = None  # best/ holds it (under `policy`); `tie` says when scores tie
        self.tie: str | None = None
        check_alarm_params(p)

    def attach(self, inference: CheckpointInferenceCallback) -> None:
        """Take `inference` (a checkpoint_inference of the same sidecar) as the partner that feeds this callback."""
        if self.partner is inference:
            return
        if self.partner is not None:
            raise ConfigError(
                "best_checkpoint is already linked to another checkpoint_inference.",
                hint="one partner each; give the other pair its own sidecar.",
            )
        if os.path.normpath(inference.params.sidecar) != os.path.normpath(self.params.sidecar):
            raise ConfigError(
                f"best_checkpoint (sidecar={self.params.sidecar!r}) cannot link to a "
                f"checkpoint_inference writing sidecar={inference.params.sidecar!r}.",
                hint="give both the same sidecar.",
            )
        self.partner = inference
        inference.subscribe(self)

    # --- small helpers -----------------------------------------------------------------------------------
    def _sidecar(self, args: Any) -> Path:
        return sidecar_dir(args, self.params.sidecar)

    def _adapters(self, args: Any) -> Path:
        return resolve_dir(args, self.params.adapters_dir, "adapters", "callback 'best_checkpoint': adapters_dir")

    def _feeds_best_model(self, args: Any) -> bool:
        wanted = args.metric_for_best_model
        return bool(wanted) and (wanted if wanted.startswith("eval_") else f"eval_{wanted}") == self.metric_name

    def _check_feeding(self, args: Any, step: int) -> None:
        """With metric_for_best_model = ours: the same direction, and a partner that generates at evaluate."""
        self._checked = True
        if not self._feeds_best_model(args):
            return
        if bool(args.greater_is_better) != self.params.greater_is_better:
            raise ConfigError(
                f"best_checkpoint: greater_is_better={self.params.greater_is_better} but the Trainer's "
                f"greater_is_better={args.greater_is_better}; they would pick different checkpoints.",
                hint="set both the same.",
            )
        if self.partner is not None and not self.partner.generates_at("evaluate", step):
            raise ConfigError(
                f"best_checkpoint: metric_for_best_model={args.metric_for_best_model!r} needs its "
                f"checkpoint_inference to generate at evaluation, but it has on={self.partner.params.on!r}.",
                hint="on='evaluate' or 'both'.",
            )

    # --- events ------------------------------------------------------------------------------------------
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        self.args, self._checked, self._scored = args, False, set()
        self.state, self._control = state, control
        scores = None
        if state.is_world_process_zero:
            self._rescan(args, state.global_step)
            scores = {step: cs.value(self.params.aggregate) for step, cs in self.checkpoints.items()}
        if state.global_step and self._feeds_best_model(args):  # a resume: every rank corrects its state alike
            self._correct_history(args, state, broadcast_from_main(scores) or {})

    def _correct_history(self, args: Any, state: Any, scores: dict[int, float | None]) -> None:
        """On resume, the Trainer's logged eval_<metric> of each step this run rescored (its step file or the
        spec changed since) becomes the new score, and its best with it: else the summary and the Trainer's
        choice of best keep the interrupted run's numbers beside a scores.json that says otherwise."""
        changed = False
        for entry in state.log_history:
            step = entry.get("step")
            if self.metric_name in entry and step in scores:
                score = scores[step]
                new = math.nan if score is None else float(score)
                old = entry[self.metric_name]
                if not (old == new or (isinstance(old, float) and math.isnan(old) and math.isnan(new))):
                    entry[self.metric_name], changed = new, True
        if not changed:
            return
        logged = [(e["step"], e[self.metric_name]) for e in state.log_history if self.metric_name in e]
        finite = [(step, value) for step, value in logged if isinstance(value, (int, float)) and math.isfinite(value)]
        if not finite:
            return
        better = max if args.greater_is_better is not False else min
        step, value = better(finite, key=lambda sv: (sv[1], -sv[0]) if better is max else (sv[1], sv[0]))
        state.best_metric, state.best_global_step = value, step
        folder = Path(args.output_dir) / f"checkpoint-{step}"
        state.best_model_checkpoint = str(folder) if folder.is_dir() else state.best_model_checkpoint

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        self._control = control
        if not self._checked:
            self._check_feeding(args, state.global_step)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: object,
    ) -> None:
        if not self._checked:
            self._check_feeding(args, state.global_step)
        if metrics is None or self.metric_name in metrics:
            return  # inserted already (the partner ran first and handed its records over)
        if self.partner is not None and self.partner.generates_at("evaluate", state.global_step):
            return  # the partner runs after us and hands its records over
        result = self._score(args, state, None)
        if result is not None:
            self._insert(state, metrics, result)
        elif self._feeds_best_model(args):  # the Trainer would fail with a bare KeyError on the missing metric
            raise ConfigError(
                f"best_checkpoint: metric_for_best_model={args.metric_for_best_model!r} but no "
                f"{step_file_name(state.global_step)} in {self._sidecar(args)} when best_checkpoint evaluated.",
                hint=f"{_LINK_HINT}.",
            )

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object) -> None:
        if self.partner is not None and self.partner.generates_at("save", state.global_step):
            return  # the partner runs after us at this save and hands its records over
        if state.global_step not in self._scored:
            self._score(args, state, None)
        if state.is_world_process_zero:
            self._after_save(args)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        if not state.is_world_process_zero:
            return
        self._rescan(args, state.global_step)  # picks up files that no event scored
        self._after_save(args)
        if not self.checkpoints:
            self._warn_once(
                "empty",
                f"best_checkpoint: no inference files in {self._sidecar(args)}. Hint: add "
                "the checkpoint_inference callback with the same sidecar.",
            )

    def inference_ready(
        self,
        args: TrainingArguments,
        state: TrainerState,
        path: Path,
        records: list[dict[str, Any]],
        metrics: dict[str, float] | None,
    ) -> None:
        """The partner's hand-over (every rank), right after it wrote `path`; metrics is None at a save."""
        result = self._score(args, state, records)
        if metrics is not None and result is not None:
            self._insert(state, metrics, result)
        elif metrics is None and state.is_world_process_zero:
            self._after_save(args)

    # --- scoring -----------------------------------------------------------------------------------------
    def _score(self, args: Any, state: Any, records: list[dict] | None) -> dict | None:
        """Score this step on the main process (records given, or its file) and share the result."""
        step, result = state.global_step, None
        if state.is_world_process_zero:
            try:
                cs = self._score_main(args, step, state.epoch, records)
                if cs is not None:
                    entry = cs.to_dict(self.params.aggregate)  # finite or None: the broadcast is plain data
                    result = {
                        "score": entry["score"],
                        "components": entry["components"],
                        "alarm": self._alarm_check(state),
                    }
            except Exception as exc:  # other ranks must not wait forever for a result that will not come
                broadcast_from_main({"error": f"{type(exc).__name__}: {exc}"})
                raise
        result = broadcast_from_main(result)
        if result is not None and "error" in result:
            raise RewardkitError(f"best_checkpoint: scoring failed on the main process: {result['error']}")
        if result is not None:
            self._scored.add(step)
            if result.get("alarm"):  # every rank: all of them must stop at the same step
                self._alarm_apply(args, state, result["alarm"])
        return result

    def _score_main(
        self, args: Any, step: int, epoch: float | None, records: list[dict] | None
    ) -> CheckpointScore | None:
        name = step_file_name(step)
        if records is None:
            path = self._sidecar(args) / name
            if not path.is_file():
                return None
            loaded = load_inference(path, self.params.completion_key)
            rows, key = loaded.rows, loaded.completion_key
            epoch = loaded.epoch if loaded.epoch is not None else epoch
        else:
            rows, key = normalize_records(records, name, self.params.completion_key)
        ids = {str(r["id"]) for r in rows}
        if self._ids is not None and not self._ids <= ids:  # lacks rows the others were scored on: rescore all
            self._rescan(args, step)
            return self.checkpoints.get(step)
        self._ids = ids if self._ids is None else self._ids
        rows, dropped = keep_rows(rows, self._ids)
        if dropped:
            self._warn_rows(args)
        cs = score_checkpoint(
            self.composed,
            rows,
            name=f"step_{step}",
            file=name,
            step=step,
            epoch=epoch,
            completion_key=key,
            dropped=dropped,
        )
        cs.file_sha256 = file_sha256(self._sidecar(args) / name)  # reused on resume only for the same file
        self.checkpoints[step] = cs
        self._write_record(args)
        logger.info(
            "best_checkpoint: step %d %s=%s %s", step, self.metric_name, cs.value(self.params.aggregate), cs.components
        )
        return cs

    def _warn_rows(self, args: Any) -> None:
        self._warn_once(
            "rows",
            f"best_checkpoint: the inference files in {self._sidecar(args)} hold different "
            f"rows; every checkpoint is scored on the {len(self._ids or ())} rows all of them share "
            "('dropped' in scores.json counts the rest). Hint: keep one validation set per run.",
        )

    def _insert(self, state: Any, metrics: dict, result: dict) -> None:
        """Put eval_<metric> (NaN when unscorable) and its components into metrics and the log history."""
        added = {self.metric_name: math.nan if result["score"] is None else result["score"]}
        added.update({f"{self.metric_name}/{a}": v for a, v in result["components"].items() if v is not None})
        if result.get("alarm"):  # in metrics, so `rewardkit train` forwards it to the report_to trackers too
            added[f"{self.metric_name}/reward_divergence"] = 1.0
        metrics.update(added)
        # The Trainer logged its copy of metrics before on_evaluate: add ours to that log entry ourselves.
        last = state.log_history[-1] if state.log_history else {}
        if last.get("step") == state.global_step and any(k.startswith("eval_") for k in last):
            last.update(added)
        else:
            state.log_history.append({**added, "epoch": state.epoch, "step": state.global_step})

    # --- best/ and top-k (main process; the record: BestRecord) ------------------------------------------------
    def _after_save(self, args: Any) -> None:
        self._sync_best(args)
        self._prune(args)
        self._write_record(args)
