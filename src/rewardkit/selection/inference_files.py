"""The inference-file format: one module for its producer (`checkpoint_inference`) and its consumers
(`best_checkpoint`, `rewardkit select`).

Files in an inference folder:

- rewardkit's own, `step_{N}.json` (N = global step), written atomically by `write_step_file`:
  `{"step": N, "epoch": 1.5, "records": [{"id", "prompt", "output", <reference/extra columns>}]}`
- a plain list of records, e.g. the seed pipeline's `inference_epoch{E}.json` in competition format
  `[{"id", "input": {...}, "output": {"answer": "..."}}]` or flat `[{"id", "completion": "...", ...}]`.

The completion field: an explicit `completion_key`, else (None, the default) "completion" when any record of
the file has one, else "output" (what step files and the competition format use). When the field holds an
object, its "answer" is the text. An "input" object is flattened into columns. References come from the
records or from a labels file joined by id (ids compare as strings; labels win on shared columns).
Checkpoints are compared on the same row ids: `shared_row_ids` refuses files of different rows unless the
caller opts into their intersection.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.core.errors import DataError
from rewardkit.core.fileio import atomic_write_json, read_json, read_records
from rewardkit.core.paths import safe_child
from rewardkit.core.validation import duplicates

STEP_FILE = re.compile(r"^step_(\d+)\.json$")
SEED_FILE = re.compile(r"^inference_epoch(\d+)\.json$")
RECORD_KEYS = ("id", "prompt", "output")  # what every step-file record holds besides the copied columns
TEXT_FIELD = "output"  # step files keep "output" so files and scripts written before stay readable
AUTO_FIELDS = ("completion", "output")  # completion_key=None: the first present wins (score's name first)


def step_file_name(step: int) -> str:
    """The file name of a global step's inference."""
    return f"step_{step}.json"


def step_files(folder: str | Path) -> dict[int, Path]:
    """{step: path} of the step_N.json files in `folder` (empty when it does not exist); two files of one step
    (step_1.json, step_01.json) raise a DataError."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    found = _regular(sorted(p for p in folder.iterdir() if STEP_FILE.match(p.name)))
    _check_one_file_per_step(found)
    matched = ((STEP_FILE.match(p.name), p) for p in found)
    return {int(m.group(1)): p for m, p in matched if m is not None}  # every one matches (filtered above)


def _check_one_file_per_step(paths: list[Path]) -> None:
    """Refuse two files naming one step or epoch: a step is one checkpoint (best_checkpoint maps it to
    checkpoint-N), so step_1.json and step_01.json cannot both be it."""
    by_number: dict[tuple[str, int], list[str]] = {}
    for path in paths:
        for kind, pattern in (("step", STEP_FILE), ("epoch", SEED_FILE)):
            if m := pattern.match(path.name):
                by_number.setdefault((kind, int(m.group(1))), []).append(path.name)
    clash = next(((key, names) for key, names in by_number.items() if len(names) > 1), None)
    if clash is not None:
        (kind, number), names = clash
        raise DataError(
            f"{paths[0].parent}: {' and '.join(sorted(names))} are all {kind} {number}.",
            hint="keep one "
            f"file per {kind} ({step_file_name(number) if kind == 'step' else names[0]}) and move the "
            "others away.",
        )


# --- writing -------------------------------------------------------------------------------------------------
def make_record(row_id: object, prompt: object, text: str, columns: dict[str, Any]) -> dict:
    """One step-file record: id, prompt, the generated text, then the copied columns."""
    return {"id": row_id, "prompt": prompt, TEXT_FIELD: text, **columns}


def write_step_file(
    folder: str | Path, step: int, epoch: float | None, records: list[dict], inside: str | Path | None = None
) -> Path:
    """Write `folder/step_{step}.json` atomically (readers never see half a file); `inside`: the run folder
    (never written through a link)."""
    return atomic_write_json(
        Path(folder) / step_file_name(step), {"step": step, "epoch": epoch, "records": records}, inside=inside
    )


# --- reading -------------------------------------------------------------------------------------------------
@dataclass
class InferenceFile:
    """One inference file: its step / epoch (from the content or the name), flat rows, the completion field."""

    path: Path
    step: int | None
    epoch: float | None
    rows: list[dict]
    completion_key: str


def completion_field(records: list, completion_key: str | None) -> str:
    """The field holding the completion: `completion_key`, or the first of AUTO_FIELDS any record has."""
    if completion_key is not None:
        return completion_key
    present = {k for r in records if isinstance(r, dict) for k in r}
    return next((k for k in AUTO_FIELDS if k in present), AUTO_FIELDS[-1])


def _normalize(item: Any, index: int, where: str, completion_key: str) -> dict:
    if not isinstance(item, dict):
        raise DataError(
            f"{where}: record {index} must be an object, got {type(item).__name__}.",
            hint='records look like {"id": ..., "completion": "..."}.',
        )
    row = {k: v for k, v in item.items() if not (k == "input" and isinstance(v, dict))}
    if isinstance(item.get("input"), dict):
        for key, value in item["input"].items():
            row.setdefault(key, value)
    if completion_key not in row:
        raise DataError(
            f"{where}: record {index} has no {completion_key!r} field (fields: {sorted(item)}).",
            hint="pass the field holding the generated text as completion_key / --completion-key.",
        )
    out = row[completion_key]
    if isinstance(out, dict):
        if not isinstance(out.get("answer"), str):
            raise DataError(
                f"{where}: record {index}: {completion_key!r} is an object without a string 'answer'.",
                hint='competition records look like {"output": {"answer": "..."}}.',
            )
        row[completion_key] = out["answer"]
    row.setdefault("id", index)
    return row


def normalize_records(records: list, where: str, completion_key: str | None = None) -> tuple[list[dict], str]:
    """(flat rows, completion field): "input" flattened, the text under the field, ids unique; errors name `where`."""
    key = completion_field(records, completion_key)
    rows = [_normalize(item, i, where, key) for i, item in enumerate(records)]
    _check_unique([str(r["id"]) for r in rows], where)
    return rows, key


def _check_unique(ids: list[str], where: str) -> None:
    dups = duplicates(ids)
    if dups:
        raise DataError(f"{where}: duplicate ids {dups[:10]}.", hint="ids must be unique to join references.")


def _number(value: Any, path: Path, what: str, integer: bool) -> None:
    """`value` is None or a non-negative integer (integer) / finite non-negative number: NaN, Infinity (1e400
    reads as one) and -1 are refused, as `select --json` could not print them as JSON."""
    kinds = int if integer else (int, float)
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value < 0
    ):
        raise DataError(
            f"{path}: {what!r} must be {'a non-negative integer' if integer else 'a finite number >= 0'}"
            f", got {value!r}.",
            hint="regenerate the file or delete it.",
        )


def load_inference(path: str | Path, completion_key: str | None = None) -> InferenceFile:
    """One inference file in rewardkit or list format; errors name the file."""
    path = Path(path)
    data = read_json(path)
    step = epoch = None
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        step, epoch, records = data.get("step"), data.get("epoch"), data["records"]
        _number(step, path, "step", integer=True)
        _number(epoch, path, "epoch", integer=False)
    elif isinstance(data, list):
        records = data
    else:
        raise DataError(
            f"{path}: expected a list of records or an object with 'records', got {type(data).__name__}.",
            hint="see `rewardkit select --help` for the file shapes.",
        )
    if (m := STEP_FILE.match(path.name)) and step is not None and step != int(m.group(1)):
        raise DataError(
            f"{path}: the file says step {step} but its name says step {int(m.group(1))}.",
            hint="the "
            f"step picks the checkpoint folder (checkpoint-N): rename it {step_file_name(step)} or "
            "regenerate it.",
        )
    if step is None and m:
        step = int(m.group(1))
    if epoch is None and (m := SEED_FILE.match(path.name)):
        epoch = float(m.group(1))
    if not records:
        raise DataError(f"{path}: no records (the inference run wrote none).", hint="regenerate the file or delete it.")
    rows, key = normalize_records(records, str(path), completion_key)
    return InferenceFile(path, step, None if epoch is None else float(epoch), rows, key)


def read_rows(path: str | Path) -> list[dict]:
    """Rows of a JSON list / JSONL file, or the records of a step file (`{"records": [...]}`) used as a data set.

    At least one row, each an object that can be written back as strict JSON (no NaN or Infinity): what
    `rewardkit generate` and checkpoint_inference both read, checked before any generation starts.
    """
    rows = _records(path)
    if not rows:
        raise DataError(
            f"{path}: no rows.",
            hint='a JSON list [{"id": ..., "input": {...}}, ...] or JSONL with one object per line.',
        )
    for i, row in enumerate(rows):
        try:  # found now rather than when writing, after the whole generation
            json.dumps(row, allow_nan=False)
        except ValueError:
            name = f"row {i}" + (f" (id {row['id']!r})" if isinstance(row.get("id"), (str, int)) else "")
            raise DataError(
                f"{path}: {name} holds NaN or Infinity, which the output JSON cannot hold.",
                hint="replace it with null or a number.",
            ) from None
    return rows


def _records(path: str | Path) -> list[dict]:
    try:
        return read_records(path)
    except DataError:
        if Path(path).suffix.lower() != ".json":
            raise
        data = read_json(path)  # only on this rare path: a step file reused as a validation set
        records = data.get("records") if isinstance(data, dict) else None
        if isinstance(records, list) and all(isinstance(r, dict) for r in records):
            return records
        raise


def find_inference_files(directory: str | Path, names: list[str] | None = None) -> list[Path]:
    """step_N.json / inference_epochE.json files in `directory`, or the named ones (kept inside it)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory.", hint="pass the inference folder (e.g. out/inference).")
    if names:
        files = []
        for name in names:
            path = safe_child(directory, name if name.endswith(".json") else f"{name}.json", "checkpoint")
            if not path.is_file():
                raise DataError(f"{path}: no such inference file.", hint=f"`ls {directory}`.")
            files.append(path)
        _check_one_file_per_step(files)
        return files
    files = _inference_files(directory)
    _check_one_file_per_step(files)
    if not files:
        inner = directory / "inference"  # `rewardkit select RUN` for RUN/inference: name the folder right there
        hint = (
            f"did you mean {inner}?"
            if inner.is_dir() and _inference_files(inner)
            else "run training with the checkpoint_inference callback, or point at the folder holding them."
        )
        raise DataError(
            f"{directory}: no inference files (step_N.json or inference_epochE.json) in this folder.", hint=hint
        )
    return files


def _inference_files(directory: Path) -> list[Path]:
    try:
        named = sorted(p for p in directory.iterdir() if STEP_FILE.match(p.name) or SEED_FILE.match(p.name))
    except OSError as exc:  # unreadable folder
        raise DataError(f"{directory}: cannot list ({exc.strerror or exc}).", hint="check its permissions.") from None
    return _regular(named)


def _regular(paths: list[Path]) -> list[Path]:
    """`paths` (inference file names), each a regular file (a link to one counts): a folder, FIFO or dangling link
    by such a name is an error, not left out (select picked another best, quietly, over the files left)."""
    for path in paths:
        if not path.is_file():
            what = "a dangling link" if path.is_symlink() and not path.exists() else "not a regular file"
            raise DataError(
                f"{path}: is named like an inference file but is {what}, so the checkpoints cannot all be scored.",
                hint="replace it with the checkpoint's inference file, or move it out of the folder.",
            )
    return paths


# --- the rows checkpoints are compared on --------------------------------------------------------------------
def _files(names: list[str]) -> str:
    more = len(names) - 1
    return f"{names[0]} has" if not more else f"{names[0]} and {more} other file{'s' * (more > 1)} have"


def shared_row_ids(ids_by_file: dict[str, list[str]], *, intersection: bool) -> set[str]:
    """The row ids every file has. Files with different id sets raise a DataError naming them and their counts,
    unless `intersection` (then only an empty intersection raises)."""
    sets = {name: set(ids) for name, ids in ids_by_file.items()}
    common = set.intersection(*sets.values()) if sets else set()
    groups: dict[frozenset, list[str]] = {}
    for name, ids in sets.items():
        groups.setdefault(frozenset(ids), []).append(name)
    if len(groups) <= 1:
        return common
    if not intersection:
        (ref, ref_files), *others = sorted(groups.items(), key=lambda g: -len(g[1]))  # stable: ties keep file order
        parts = [f"{_files(ref_files)} {len(ref)} rows"]
        parts += [
            f"{_files(files)} {len(ids)} ({len(ref - ids)} of those missing, {len(ids - ref)} others)"
            for ids, files in others[:5]
        ]
        raise DataError(
            f"the checkpoints were scored on different rows, so their scores do not compare: {'; '.join(parts)}.",
            hint="regenerate the files on one validation set (or move the odd "
            f"ones away), or score every checkpoint on the {len(common)} rows all files share with "
            "intersection=True (`rewardkit select --intersect`).",
        )
    if not common:
        raise DataError(
            f"the inference files share no row id ({', '.join(list(sets)[:5])}).",
            hint="they come from different validation sets; select among the files of one set.",
        )
    return common


def keep_rows(rows: list[dict], ids: set[str]) -> tuple[list[dict], int]:
    """(the rows whose id is in `ids`, how many were left out)."""
    kept = [r for r in rows if str(r["id"]) in ids]
    return kept, len(rows) - len(kept)


# --- labels --------------------------------------------------------------------------------------------------
def load_labels(path: str | Path) -> dict[str, dict]:
    """Reference columns by id (as str) from a JSON list / JSONL file, competition or flat records."""
    path = Path(path)
    items = read_records(path)
    if not items:
        raise DataError(
            f"{path}: labels must be a non-empty list of records.",
            hint='[{"id": ..., "answer": ...}] or competition items with output.answer.',
        )
    labels: dict[str, dict] = {}
    for i, item in enumerate(items):
        if "id" not in item:
            raise DataError(f"{path}: label {i} has no 'id'.", hint="every label needs the id of its record.")
        if isinstance(item.get("output"), dict):
            columns = dict(item["input"]) if isinstance(item.get("input"), dict) else {}
            if "answer" not in item["output"]:
                raise DataError(f"{path}: label {i} (id {item['id']!r}) has an 'output' without 'answer'.")
            columns["answer"] = item["output"]["answer"]
        else:
            columns = {k: v for k, v in item.items() if k != "id"}
        key = str(item["id"])
        if key in labels:
            raise DataError(f"{path}: duplicate label id {key!r}.", hint="ids must be unique.")
        labels[key] = columns
    return labels


def join_labels(
    rows: list[dict], labels: dict[str, dict], where: str, labels_path: str, completion_key: str
) -> list[dict]:
    """Add each row's label columns (labels win, never over the completion); missing or extra ids raise."""
    ids = [str(r["id"]) for r in rows]
    present = set(ids)
    missing = [i for i in ids if i not in labels]
    extra = [i for i in labels if i not in present]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"ids {missing[:10]} are not in the labels")
        if extra:
            parts.append(f"label ids {extra[:10]} have no record in the file")
        raise DataError(
            f"{where}: {'; '.join(parts)} ({labels_path}).",
            hint="inference and labels must cover "
            "the same validation set; pass the matching labels, or intersection=True "
            "(`rewardkit select --intersect`) to score on the ids both have.",
        )
    return [{**row, **{k: v for k, v in labels[str(row["id"])].items() if k != completion_key}} for row in rows]
