"""Helpers for the selection tests: a compose spec and hand-written step files of checkpoint inference."""

from __future__ import annotations

import json
from pathlib import Path

SPEC_DICT = {"rewards": {"em": {"use": "exact_match", "reference": "answer"}}}


def write_step_file(folder: Path, name: str, step: object = 1, epoch: object = 1.0) -> None:
    folder.mkdir(exist_ok=True)
    record = '{"id": 1, "output": "1", "answer": "1"}'
    (folder / name).write_text(f'{{"step": {json.dumps(step)}, "epoch": {epoch}, "records": [{record}]}}')
