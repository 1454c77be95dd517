"""`<output_dir>/log_history.jsonl`: every log record of a stage (training, evaluation, the callbacks' metrics),
one JSON object per line, written by the main process as it happens.

The piped log shows one short line per logging step (train/events.py); this file keeps the whole record, like
trainer_state.json's `log_history` (which the Trainer writes only into checkpoints, and `rewardkit train` at the
end of the stage). Each record is appended with one write (`fileio.append_jsonl`); on a resume from
checkpoint-N the file is rewritten atomically without the records after step N (they belong to the abandoned
continuation) and without a line a kill cut short.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from rewardkit.core.fileio import append_jsonl, atomic_write_jsonl, refuse_link_below
from rewardkit.core.reading import read_run_bytes

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments

LOG_FILE = "log_history.jsonl"


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a log file; a line that does not parse (cut by a kill) is skipped."""
    records = []
    data = read_run_bytes(path)  # a FIFO there is an error, not a wait
    for line in (data or b"").decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class LogRecords(TrainerCallback):
    """Append each log record ({step, epoch, time, **logs}) to `<output_dir>/log_history.jsonl`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOG_FILE

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        if not state.is_world_process_zero:
            return
        kept = [r for r in read_log(self.path) if isinstance(r.get("step"), int) and r["step"] <= state.global_step]
        atomic_write_jsonl(self.path, kept if state.global_step else [], inside=self.folder)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: object,
    ) -> None:
        if state.is_world_process_zero and logs:
            refuse_link_below(self.folder, self.path)  # a link there would carry the log out of the run
            record: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch, "time": round(time.time(), 3)}
            record.update({str(k): v for k, v in logs.items() if isinstance(v, (int, float, str, bool)) or v is None})
            append_jsonl(self.path, record, inside=self.folder)
