"""`best_checkpoint`: score each step's inference file, feed eval_<metric> to the Trainer, keep the best adapter.

The record `<args.output_dir>/<sidecar>/scores.json`:

    {"metric": "eval_score", "aggregate": "corpus", "greater_is_better": true, "completion_key": "output",
     "expression": "...", "spec": {...},
     "checkpoints": [{"name", "file", "step", "epoch", "count", "components": {alias: mean}, "corpus", "item",
                      "score"}],
     "best": <a checkpoint entry> | null,
     "best_dir": {"path": "best", "step": N, "source": "<folder copied>"} | null}

It is rebuilt on train begin from the files of steps <= the (resumed) global step, so a resume neither loses
nor duplicates entries.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ..api import compose
from ..errors import ConfigError, DataError, RewardkitError
from ..fileio import atomic_replace_dir, atomic_write_json, read_json
from ..selection import (SCORES_FILE, STEP_FILE, CheckpointScore, load_inference, normalize_records, pick_best,
                         ranked, resolve_spec, safe_child, score_checkpoint, step_file_name)
from . import common
from .common import (adapter_folder, broadcast_from_main, build_params, epoch_index, logger, resolve_dir,
                     sidecar_dir)
from .params import BestCheckpointParams

# Trainer files of a checkpoint-N folder that are not the model: left out when copying it to best/.
_TRAINER_FILES = ("optimizer", "scheduler", "scaler", "rng_state", "trainer_state", "training_args", "global_step",
                  "latest", "zero_to_fp32")


class BestCheckpointCallback(TrainerCallback):
    """Score every inference file with a compose spec, insert eval_<metric>, copy the best adapter to best/.

    Ordering: it works before or after `checkpoint_inference` (which hands its records over in-process), but
    must come before `EarlyStoppingCallback`, which reads eval_<metric> in its own on_evaluate. With
    `metric_for_best_model="eval_<metric>"` the Trainer (best_model_checkpoint, save_total_limit protection,
    early stopping) ranks checkpoints by the same score; ties go to the earlier step in both. Scoring runs on
    the main process while the other ranks wait for the broadcast result: keep the validation set small when
    the spec is slow (BERTScore). Eval metrics added in on_evaluate are not seen by report_to integrations;
    they go to state.log_history (trainer_state.json) and the `rewardkit.callbacks` logger.

    Example:
    >>> cb = BestCheckpointCallback(spec={"rewards": {"em": {"use": "exact_match"}}}, top_k=2)
    """

    Params = BestCheckpointParams

    def __init__(self, **params: Any) -> None:
        self.params = p = build_params(BestCheckpointParams, params, "best_checkpoint")
        safe_child(".", p.sidecar, "sidecar")  # refuse '../' names now rather than at the first save
        safe_child(".", p.best_dir, "best_dir")
        self.composed = compose(p.spec)
        self.spec = resolve_spec(p.spec)
        self.metric_name = p.metric if p.metric.startswith("eval_") else f"eval_{p.metric}"
        self.checkpoints: dict[int, CheckpointScore] = {}
        self.best_dir_state: dict | None = None
        self.args: Any = None
        self._scored: set[int] = set()
        self._checked = False
        self._warned: set[Any] = set()
        common._listeners.add(self)

    # --- paths and small helpers ----------------------------------------------------------------------
    def _sidecar(self, args: Any) -> Path:
        return sidecar_dir(args, self.params.sidecar)

    def _warn_once(self, key: Any, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, UserWarning, stacklevel=3)

    def _producers(self, args: Any, event: str, step: int) -> list:
        """checkpoint_inference callbacks of this trainer that will still write `step` at `event`."""
        mine = os.path.abspath(self._sidecar(args))
        return [c for c in list(common._producers)
                if c.args is args and os.path.abspath(sidecar_dir(args, c.params.sidecar)) == mine
                and c.params.on in (event, "both") and (event == "evaluate" or c._done_step != step)]

    def _check_feeding(self, args: Any, step: int) -> None:
        """With metric_for_best_model = ours, a checkpoint_inference must generate at evaluate."""
        self._checked = True
        wanted = args.metric_for_best_model
        if not wanted or (wanted if wanted.startswith("eval_") else f"eval_{wanted}") != self.metric_name:
            return
        if not self._producers(args, "evaluate", step):
            raise ConfigError(f"best_checkpoint: metric_for_best_model={wanted!r} needs checkpoint_inference "
                              f"(on='evaluate' or 'both', sidecar={self.params.sidecar!r}) in the same trainer. "
                              "Hint: add it to callbacks, or drop metric_for_best_model.")
        if bool(args.greater_is_better) != self.params.greater_is_better:
            raise ConfigError(f"best_checkpoint: greater_is_better={self.params.greater_is_better} but the "
                              f"Trainer's greater_is_better={args.greater_is_better}; they would pick different "
                              "checkpoints. Hint: set both the same.")

    # --- events ------------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        self.args, self._checked, self._scored = args, False, set()
        if state.is_world_process_zero:
            self._rescan(args, state.global_step)

    def on_step_begin(self, args, state, control, **kwargs):
        if not self._checked:
            self._check_feeding(args, state.global_step)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not self._checked:
            self._check_feeding(args, state.global_step)
        if metrics is None or self.metric_name in metrics or self._producers(args, "evaluate", state.global_step):
            return  # already inserted, or checkpoint_inference runs after us and hands its records over
        result = self._score(args, state, None)
        if result is not None:
            self._insert(state, metrics, result)

    def on_save(self, args, state, control, **kwargs):
        if self._producers(args, "save", state.global_step):
            return  # checkpoint_inference runs after us at this save and hands its records over
        if state.global_step not in self._scored:
            self._score(args, state, None)
        if state.is_world_process_zero:
            self._after_save(args)

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self._rescan(args, state.global_step)  # picks up files that no event scored
        self._after_save(args)
        if not self.checkpoints:
            self._warn_once("empty", f"best_checkpoint: no inference files in {self._sidecar(args)}. Hint: add "
                            "the checkpoint_inference callback with the same sidecar.")

    def inference_ready(self, args: Any, state: Any, path: Path, records: list[dict], metrics: dict | None) -> None:
        """Called by checkpoint_inference once a step's records exist (metrics is None at a save)."""
        # Only the trainer this callback belongs to (other trainers' callbacks may still be alive in-process).
        if args is not self.args or os.path.abspath(path.parent) != os.path.abspath(self._sidecar(args)):
            return
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
                    result = {"score": cs.value(self.params.aggregate), "components": cs.components}
            except Exception as exc:  # other ranks must not wait forever for a result that will not come
                broadcast_from_main({"error": f"{type(exc).__name__}: {exc}"})
                raise
        result = broadcast_from_main(result)
        if result is not None and "error" in result:
            raise RewardkitError(f"best_checkpoint: scoring failed on the main process: {result['error']}")
        if result is not None:
            self._scored.add(step)
        return result

    def _score_main(self, args: Any, step: int, epoch: float | None, records: list[dict] | None
                    ) -> CheckpointScore | None:
        name = step_file_name(step)
        if records is None:
            path = self._sidecar(args) / name
            if not path.is_file():
                return None
            _, file_epoch, rows = load_inference(path, self.params.completion_key)
            epoch = file_epoch if file_epoch is not None else epoch
        else:
            rows = normalize_records(records, name, self.params.completion_key)
        cs = score_checkpoint(self.composed, rows, name=f"step_{step}", file=name, step=step, epoch=epoch,
                              completion_key=self.params.completion_key)
        self.checkpoints[step] = cs
        self._write_record(args)
        logger.info("best_checkpoint: step %d %s=%s %s", step, self.metric_name, cs.value(self.params.aggregate),
                    cs.components)
        return cs

    def _insert(self, state: Any, metrics: dict, result: dict) -> None:
        """Put eval_<metric> (NaN when unscorable) and its components into metrics and the log history."""
        added = {self.metric_name: math.nan if result["score"] is None else result["score"]}
        added.update({f"{self.metric_name}/{a}": v for a, v in result["components"].items() if v is not None})
        metrics.update(added)
        # The Trainer logged its copy of metrics before on_evaluate: add ours to that log entry ourselves.
        last = state.log_history[-1] if state.log_history else {}
        if last.get("step") == state.global_step and any(k.startswith("eval_") for k in last):
            last.update(added)
        else:
            state.log_history.append({**added, "epoch": state.epoch, "step": state.global_step})

    # --- the record, best/ and top-k (main process) ----------------------------------------------------------
    def _record_config(self) -> dict:
        return {"expression": self.composed.expression, "spec": self.spec,
                "completion_key": self.params.completion_key}

    def _rescan(self, args: Any, global_step: int) -> None:
        """Rebuild the record from the files of steps <= global_step, reusing scores of an unchanged spec."""
        folder, old = self._sidecar(args), {}
        if (folder / SCORES_FILE).is_file():
            try:
                old = read_json(folder / SCORES_FILE)
            except DataError as exc:
                logger.warning("best_checkpoint: ignoring an unreadable record (%s); rescoring the files.", exc)
        reuse = isinstance(old, dict) and all(old.get(k) == v for k, v in self._record_config().items())
        kept: dict[int, CheckpointScore] = {}
        for entry in old.get("checkpoints", []) if reuse else []:
            m = STEP_FILE.match(str(entry.get("file")))
            if m and int(m.group(1)) == entry.get("step") <= global_step and (folder / entry["file"]).is_file():
                kept[entry["step"]] = CheckpointScore.from_dict(entry)
        self.checkpoints = kept
        best_dir = old.get("best_dir") if reuse else None
        self.best_dir_state = best_dir if isinstance(best_dir, dict) and best_dir.get("step") in kept else None
        files = [p for p in folder.iterdir() if STEP_FILE.match(p.name)] if folder.is_dir() else []
        for path in sorted(files):
            step = int(STEP_FILE.match(path.name).group(1))
            if step <= global_step and step not in self.checkpoints:
                self._score_main(args, step, None, None)
        self._write_record(args)

    def _write_record(self, args: Any) -> None:
        agg, gib = self.params.aggregate, self.params.greater_is_better
        cps = sorted(self.checkpoints.values(), key=lambda c: c.step)
        best = pick_best(cps, agg, gib)
        atomic_write_json(self._sidecar(args) / SCORES_FILE, {
            "metric": self.metric_name, "aggregate": agg, "greater_is_better": gib, **self._record_config(),
            "checkpoints": [c.to_dict(agg) for c in cps], "best": best.to_dict(agg) if best else None,
            "best_dir": self.best_dir_state})

    def _adapter_source(self, args: Any, best: CheckpointScore) -> Path | None:
        """lora_save's folder of the best step, else the Trainer's checkpoint-N."""
        adapters = resolve_dir(args, self.params.adapters_dir, "adapters")
        step_dir = adapters / adapter_folder("step", best.step, best.epoch)
        if step_dir.is_dir():
            return step_dir
        # epoch_E holds the last save of epoch E: the best's only if no later scored step shares that epoch.
        e = epoch_index(best.epoch)
        later = [c for c in self.checkpoints.values() if c.step > best.step and epoch_index(c.epoch) == e]
        epoch_dir = adapters / adapter_folder("epoch", best.step, best.epoch)
        if epoch_dir.is_dir() and not later:
            return epoch_dir
        checkpoint = Path(args.output_dir) / f"checkpoint-{best.step}"
        return checkpoint if checkpoint.is_dir() else None

    def _after_save(self, args: Any) -> None:
        self._sync_best(args)
        self._prune(args)
        self._write_record(args)

    def _sync_best(self, args: Any) -> None:
        best = pick_best(list(self.checkpoints.values()), self.params.aggregate, self.params.greater_is_better)
        target = safe_child(args.output_dir, self.params.best_dir, "best_dir")
        if best is None or (self.best_dir_state and self.best_dir_state.get("step") == best.step
                            and target.is_dir()):
            return
        source = self._adapter_source(args, best)
        if source is None:
            self._warn_once(("nosource", best.step), f"best_checkpoint: the best step {best.step} has no saved "
                            "adapter (no lora_save folder, no checkpoint-N). Hint: save at every evaluation "
                            "(save_steps = eval_steps).")
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            shutil.copytree(source, tmp, dirs_exist_ok=True, ignore=lambda d, names: [
                n for n in names if n.startswith(_TRAINER_FILES) or n.startswith(".")])
            atomic_replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.best_dir_state = {"path": str(target), "step": best.step, "source": str(source)}
        logger.info("best_checkpoint: best is step %d; copied %s -> %s", best.step, source, target)

    def _prune(self, args: Any) -> None:
        """Delete lora_save folders of scored steps outside the top k (the best always stays)."""
        k = self.params.top_k
        if k is None:
            return
        order = ranked(list(self.checkpoints.values()), self.params.aggregate, self.params.greater_is_better)
        keep = {c.step for c in order[:k]}
        adapters = resolve_dir(args, self.params.adapters_dir, "adapters")
        for c in order[k:]:
            folders = [adapter_folder("step", c.step, c.epoch)]
            if not any(epoch_index(o.epoch) == epoch_index(c.epoch) for o in order if o.step in keep):
                folders.append(adapter_folder("epoch", c.step, c.epoch))
            for name in folders:
                if (adapters / name).is_dir():
                    shutil.rmtree(adapters / name)
                    logger.info("best_checkpoint: top_k=%d, removed %s", k, adapters / name)
