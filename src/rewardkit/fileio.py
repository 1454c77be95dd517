"""Atomic file writes (temp file + rename) and strict JSON/JSONL reading."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import DataError


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` so readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Atomically write `data` as indented UTF-8 JSON."""
    return atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def atomic_replace_dir(tmp_dir: Path, final: Path) -> Path:
    """Move a fully written temp dir into place, replacing an older `final` dir."""
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp_dir, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, final)
    return final


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a corrupt, truncated or empty file raises DataError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc}).") from None
    if not text.strip():
        raise DataError(f"{path}: the file is empty. Hint: it was probably cut off while being written; "
                        "re-run inference for it or delete it.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg}). Hint: the file may be "
                        "truncated; re-run inference for it or delete it.") from None


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL file of objects; errors name the file and line."""
    path = Path(path)
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc}).") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n}: invalid JSON ({exc.msg}).") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{n}: each line must be a JSON object, got {type(row).__name__}.")
        rows.append(row)
    return rows
