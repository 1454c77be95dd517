"""What the Trainer saves in a run folder, recorded as the run's (core/written.py), so that `--overwrite` and
`save_total_limit` delete that and nothing else.

A checkpoint-N/ (and final/) is recorded "pending" just before the Trainer saves into it and its files right after:
a kill in between leaves a folder whose files with the Trainer's names are still the run's. TensorBoard's event
files under the run are recorded as files that grow. `save_total_limit` is applied here instead of by the Trainer
(whose rotation deletes a whole checkpoint-N/, a user's file in it included): the oldest checkpoints beyond the
limit lose what the run wrote, anything else in them stays and is named once. Only the main process records.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from transformers import TrainerCallback

from rewardkit.callbacks.common import logger
from rewardkit.core import written

if TYPE_CHECKING:
    from transformers import Trainer, TrainerControl, TrainerState, TrainingArguments

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_EVENTS = "events.out.tfevents."


def _foreign(folder: Path, target: Path) -> frozenset[Path]:
    """What is in `target` already that the run did not write (kept out of the record of the save into it)."""
    if not target.is_dir():
        return frozenset()
    return frozenset(found.path for found in written.judged(folder, [target]) if not found.ours)


def note_saved(folder: Path, target: Path, before: frozenset[Path]) -> None:
    """Record the files the Trainer saved in `target`, then the folder as "saved" (a shard or RNG state written late
    by another rank is still the run's by name; nothing else unrecorded is), leaving out what was there before and
    was not the run's."""
    if target.is_dir() and not target.is_symlink():
        written.note_many(folder, [*written.tree_lines(target, target, before)[1:], (target, "saved", None, None)])


@contextlib.contextmanager
def saving(folder: Path, target: Path, main: bool) -> Iterator[None]:
    """Record `target` as a folder the Trainer saves into, and its files once saved (on the main process)."""
    before = _foreign(folder, target) if main else frozenset()
    if main:
        written.note(folder, target, "pending")
    yield
    if main:
        note_saved(folder, target, before)


class RecordSaves(TrainerCallback):
    """Record each checkpoint-N/ the Trainer saves and the TensorBoard files under `folder`; rotate checkpoints
    to `limit` (the config's save_total_limit, which the Trainer is then given as None)."""

    def __init__(self, folder: str | Path, limit: int | None = None) -> None:
        self.folder = Path(folder)
        self.limit = limit
        self.before: dict[int, frozenset[Path]] = {}
        self.events: set[Path] = set()
        self.warned: set[Path] = set()

    def _pending(self, args: TrainingArguments, state: TrainerState, control: TrainerControl) -> None:
        best = str(getattr(args, "save_strategy", "")).lower().endswith("best") and control.should_evaluate
        if state.is_world_process_zero and (control.should_save or best):
            target = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
            self.before[state.global_step] = _foreign(self.folder, target)
            written.note(self.folder, target, "pending")

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self._pending(args, state, control)

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self._pending(args, state, control)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if not state.is_world_process_zero:
            return
        target = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
        note_saved(self.folder, target, self.before.pop(state.global_step, frozenset()))
        self._events(args)
        self._rotate(Path(str(args.output_dir)), target, state.best_model_checkpoint)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if state.is_world_process_zero:
            self._events(args)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if state.is_world_process_zero:
            self._events(args)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if state.is_world_process_zero:
            self._events(args)

    def _events(self, args: TrainingArguments) -> None:
        """Record TensorBoard's event files under the run (its writer appends to them)."""
        runs = Path(str(args.output_dir)) / "runs"
        if not runs.is_dir() or runs.is_symlink():
            return
        new = [p for p in runs.rglob(f"{_EVENTS}*") if p not in self.events and p.is_file() and not p.is_symlink()]
        if new:
            written.note_many(self.folder, [(path, "appended", None) for path in new])
            self.events.update(new)

    def _rotate(self, root: Path, newest: Path, best: str | None) -> None:
        """Delete what the run wrote in the oldest checkpoints beyond the limit (never the newest or the best)."""
        if not self.limit or self.limit <= 0:
            return
        steps = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _CHECKPOINT.match(p.name)) and p.is_dir())
        keep = {newest.resolve(), *([Path(best).resolve()] if best else [])}
        old = [p for _, p in steps if p.resolve() not in keep]
        extra = len(steps) - max(self.limit, len(keep & {p.resolve() for _, p in steps}))
        for path in old[: max(extra, 0)]:
            for found in written.remove_recorded(self.folder, [path]):
                if found.path not in self.warned:
                    self.warned.add(found.path)
                    logger.warning(
                        "save_total_limit: %s was not written by this run; it is kept, so %s stays.", found.path, path
                    )


def record_saves(trainer: Trainer, folder: Path) -> RecordSaves:
    """Add the recording callback to `trainer` and take over its checkpoint rotation (see the module docstring)."""
    callback = RecordSaves(folder, trainer.args.save_total_limit)
    trainer.args.save_total_limit = None  # rotated by the callback, which deletes only what the run wrote
    trainer.add_callback(callback)
    return callback
