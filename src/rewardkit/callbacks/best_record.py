"""The record `best_checkpoint` keeps in its sidecar (scores.json): every scored step, the pick, the alarm and
best/'s source, so a resumed run (or `rewardkit select`) reuses the scores of an unchanged spec and rows."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

from rewardkit.callbacks.best_state import BestState
from rewardkit.callbacks.common import logger, output_dir
from rewardkit.composition.composed import Composed
from rewardkit.core.errors import DataError
from rewardkit.core.fileio import atomic_write_json, read_json
from rewardkit.core.paths import safe_child
from rewardkit.selection.checkpoints import SCORES_FILE, CheckpointScore, score_checkpoint
from rewardkit.selection.inference_files import keep_rows, load_inference, shared_row_ids, step_files


def file_sha256(path: Path) -> str | None:
    """The sha256 of a step file's bytes (None when it cannot be read)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _digest(entry: dict) -> str:
    """A checksum of a recorded entry's content: an entry edited by hand no longer matches it."""
    body = {k: v for k, v in entry.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def sealed(entry: dict) -> dict:
    """`entry` with its digest."""
    plain = json.loads(json.dumps(entry, default=str))  # as it reads back from the file
    return {**plain, "digest": _digest(plain)}


def code_version(composed: Composed) -> dict[str, str]:
    """Each component's code: the sha256 of the file that defines its function or class (an inline reward, a
    plugin's, a built-in), so an edited reward rescores rather than reusing scores of the old code."""
    out = {}
    for alias, reward in composed.components.items():
        target = getattr(reward, "func", reward)
        target = target if inspect.isfunction(target) or inspect.isclass(target) else type(target)
        try:
            source = Path(inspect.getfile(target)).read_bytes()
        except (OSError, TypeError):  # defined in the interpreter or in C: its name is what is known
            source = f"{getattr(target, '__module__', '')}:{getattr(target, '__qualname__', '')}".encode()
        out[alias] = hashlib.sha256(source).hexdigest()[:16]
    return out


def _recorded(entry: Any, file: str, count: int, dropped: int, sha: str | None) -> CheckpointScore | None:
    """A recorded score still valid for `file` (the same bytes) scored on the same rows, its entry as written
    (digest), its score a number; None to rescore (a damaged, edited or unscorable entry too)."""
    if not isinstance(entry, dict) or (entry.get("file"), entry.get("count"), entry.get("dropped", 0)) != (
        file,
        count,
        dropped,
    ):
        return None
    if sha is None or entry.get("file_sha256") != sha or entry.get("digest") != _digest(entry):
        return None
    if entry.get("corpus") is None or entry.get("item") is None:
        return None  # NaN or no score is recorded as null: rescoring gives back the value itself
    try:
        return CheckpointScore.from_dict(entry)
    except (KeyError, TypeError):
        return None


class BestRecord(BestState):
    """Mixin for best_checkpoint: read, rebuild and write the sidecar's scores.json."""

    def _record_config(self) -> dict:
        if getattr(self, "_code", None) is None:
            self._code = code_version(self.composed)
        return {
            "expression": self.composed.expression,
            "spec": self.spec,
            "completion_key": self.params.completion_key,
            "code": self._code,
        }

    def _read_record(self, folder: Path) -> dict:
        if not (folder / SCORES_FILE).is_file():
            return {}
        try:
            old = read_json(folder / SCORES_FILE)
        except DataError as exc:
            logger.warning("best_checkpoint: ignoring an unreadable record (%s); rescoring the files.", exc)
            return {}
        return old if isinstance(old, dict) else {}

    def _rescan(self, args: Any, global_step: int) -> None:
        """Rebuild the record from the files of steps <= global_step on their shared rows, reusing the scores
        of an unchanged spec and row count."""
        folder = self._sidecar(args)
        old = self._read_record(folder)
        reuse = all(old.get(k) == v for k, v in self._record_config().items())
        recorded = old.get("checkpoints")
        recorded = recorded if reuse and isinstance(recorded, list) else []
        entries = {e.get("step"): e for e in recorded if isinstance(e, dict)}
        loaded = {
            s: load_inference(p, self.params.completion_key)
            for s, p in sorted(step_files(folder).items())
            if s <= global_step
        }
        self._ids = (
            shared_row_ids({f.path.name: [str(r["id"]) for r in f.rows] for f in loaded.values()}, intersection=True)
            if loaded
            else None
        )
        self.checkpoints = {}
        for step, f in loaded.items():
            rows, dropped = keep_rows(f.rows, self._ids or set())
            sha = file_sha256(f.path)
            self.checkpoints[step] = _recorded(entries.get(step), f.path.name, len(rows), dropped, sha) or (
                score_checkpoint(
                    self.composed,
                    rows,
                    name=f"step_{step}",
                    file=f.path.name,
                    step=step,
                    epoch=f.epoch,
                    completion_key=f.completion_key,
                    dropped=dropped,
                )
            )
            self.checkpoints[step].file_sha256 = sha
            if dropped:
                self._warn_rows(args)
        best_dir = old.get("best_dir") if reuse else None
        self.divergence_found = old.get("divergence") if reuse and isinstance(old.get("divergence"), dict) else None
        self.best_dir_state = (
            _moved_best_dir(
                best_dir, safe_child(output_dir(args), self.params.best_dir, "best_dir"), self.params.best_dir
            )
            if isinstance(best_dir, dict) and best_dir.get("step") in self.checkpoints
            else None
        )
        self._write_record(args)

    def _write_record(self, args: Any) -> None:
        p, cps, tie = self.params, self._decide(), self.tie
        atomic_write_json(
            self._sidecar(args) / SCORES_FILE,
            inside=output_dir(args),
            data={
                "metric": self.metric_name,
                "aggregate": p.aggregate,
                "greater_is_better": p.greater_is_better,
                **self._record_config(),
                "policy": p.policy,
                "bootstrap": {"resamples": p.bootstrap, "seed": p.seed},
                "checkpoints": [sealed(c.to_dict(p.aggregate, rows=True)) for c in cps],
                "best": self.pick.to_dict(p.aggregate) if self.pick else None,
                "tie": tie,
                "divergence": self.divergence_found,
                "best_dir": self.best_dir_state,
            },
        )


def _moved_best_dir(recorded: dict, target: Path, relative: str) -> dict:
    """A recorded `best_dir` entry with its paths where they are now: a copied or moved run folder recorded the
    original's best/ and the adapter it was copied from; a path outside the recorded run folder is kept."""
    moved = {**recorded, "path": str(target)}
    old_path, source = recorded.get("path"), recorded.get("source")
    if not isinstance(old_path, str) or not isinstance(source, str):
        return moved
    parts = Path(relative).parts
    old_best = Path(old_path)
    if old_best.parts[-len(parts) :] != parts:
        return moved
    old_run, new_run = old_best.parents[len(parts) - 1], target.parents[len(parts) - 1]
    try:
        moved["source"] = str(new_run / Path(source).relative_to(old_run))
    except ValueError:  # the source was outside the recorded run folder
        pass
    return moved
