"""Config checks that need no model and no heavy import: the error comes in seconds, before any progress bar.

Columns are checked on the first rows of local files and generators (hub datasets and parquet files are
checked after loading); GRPO's batch arithmetic is checked with TRL's defaults (GRPO_DEFAULTS; a test compares
them with the installed GRPOConfig).
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

from rewardkit.api import build
from rewardkit.composition.composed import Composed
from rewardkit.core.errors import ConfigError, closest
from rewardkit.core.fileio import read_records
from rewardkit.core.validation import validate
from rewardkit.train.config import DatasetSpec, StageConfig
from rewardkit.train.data import LOCAL_SUFFIXES, check_suffix, is_local, stage_columns
from rewardkit.train.trainer_bounds import GRPO_CHOICES
from rewardkit.train.trl_fields import CONFIG_CLASSES, config_fields, light_types

FIRST_ROWS = 20
# GRPOConfig's defaults for the keys of the batch arithmetic (tests/train/test_precheck.py keeps them true).
GRPO_DEFAULTS = {
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "num_generations": 8,
    "per_device_eval_batch_size": 8,
    "generation_batch_size": None,
    "steps_per_generation": None,
    "num_generations_eval": None,
    "eval_strategy": "no",
}


# Set by rewardkit itself: a user value would be silently replaced, so they are refused with a hint.
OWNED = {
    "output_dir": "set the stage's top-level `output_dir:` instead",
    "reward_weights": "put the weights into `rewards:` (per-reward `weight:` or `combine:`)",
}
_LISTED = 10_000  # entries of one folder compared with a mistyped name (a huge folder is not listed whole)


def check_trainer_keys(stage: StageConfig, where: str) -> None:
    """Every `trainer:` key must be a field of the stage's TRL config class (read from TRL's source: no import)."""
    class_name, fields = config_fields(stage.stage)
    for key in stage.trainer:
        if key in OWNED:
            raise ConfigError(
                f"{where}: stage {stage.label!r}: trainer.{key} is set by rewardkit.", hint=f"{OWNED[key]}."
            )
        if key not in fields:
            raise ConfigError(
                f"{where}: stage {stage.label!r}: trainer.{key} is not an argument of {class_name}."
                f"{closest(key, fields)}",
                hint=f"see the TRL docs of {class_name} for the valid names.",
            )


def _chosen(stage: StageConfig, key: str) -> bool:
    """Whether `key` is checked against TRL's accepted values instead (its annotation says str; TRL also takes
    `scale_rewards: false`)."""
    return stage.stage == "grpo" and key in GRPO_CHOICES


def check_trainer_value_types(stage: StageConfig, where: str) -> None:
    """`trainer:` values of the types TRL's source annotates with builtins (int, float, str, bool, lists, dicts,
    Literal) fit them, checked before TRL is imported; enum- and class-typed ones are checked after
    (stages.check_trainer_values), with the same message shape. Strictly: TRL's dataclasses take a value as
    given, so a text "false" for a bool was true and "0.1" for a float failed mid-training."""
    from pydantic import ConfigDict, create_model

    types = light_types(stage.stage)
    if not types:
        return
    class_name = CONFIG_CLASSES[stage.stage][1]
    fields: dict[str, Any] = {k: (types[k], ...) for k in stage.trainer if k in types and not _chosen(stage, k)}
    model = create_model(class_name, __config__=ConfigDict(strict=True), **fields)
    validate(
        model,
        {k: stage.trainer[k] for k in fields},
        f"{where}: stage {stage.label!r}",
        prefix="trainer",
        hint=f"fix the value (see the TRL docs of {class_name}).",
    )


def near_path(path: str) -> str | None:
    """An existing path close to `path`: each missing part replaced by the closest entry of its folder."""
    parts = Path(path).parts
    current = Path(parts[0]) if Path(path).is_absolute() else Path(".")
    for part in parts[1:] if Path(path).is_absolute() else parts:
        if (current / part).exists():
            current = current / part
            continue
        try:
            with os.scandir(current) as entries:
                names = [e.name for _, e in zip(range(_LISTED), entries)]
        except OSError:
            return None
        match = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
        if not match:
            return None
        current = current / match[0]
    shown = str(current) if Path(path).is_absolute() else os.path.normpath(current)
    return shown if shown != os.path.normpath(path) and current.exists() else None


def _looks_local(path: str) -> bool:
    """A local file (a loader suffix, or it exists), a path (./, ../, /, ~) or a near-miss suffix ('.jsnl'); a
    hub id is none of these."""
    suffix = Path(path).suffix.lower()
    return (
        is_local(path)
        or path.startswith(("./", "../", "/", "~"))
        or bool(suffix and difflib.get_close_matches(suffix, LOCAL_SUFFIXES, n=1, cutoff=0.7))
    )


def check_dataset_files(stage: StageConfig, where: str) -> None:
    """Each local file the dataset names exists and is of a type the loader reads; a typo is named by its key,
    with the closest existing path."""
    spec = stage.dataset
    keys = [("dataset.path", spec.path), ("dataset.eval_file", spec.eval_file)]
    for key, value in keys:
        if value is not None and Path(value).is_file():
            check_suffix(Path(value))  # a .csv: refused now, not after torch and TRL are imported (seconds)
            continue
        if value is None or (key == "dataset.path" and not _looks_local(value)):
            continue
        what = "is a folder" if Path(value).is_dir() else "does not exist"
        near = near_path(value) if what == "does not exist" else None
        suggestion = f" Did you mean {near!r}?" if near else ""
        raise ConfigError(
            f"{where}: stage {stage.label!r}: {key} {value!r} {what}.{suggestion}",
            hint="name a .json/.jsonl/.parquet file (relative paths start at the current directory "
            f"{os.getcwd()}), or a hub dataset id.",
        )


class _Rows:
    """The slice of a datasets.Dataset's interface that stage_columns reads, over plain rows."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.column_names = list(dict.fromkeys(k for row in rows for k in row))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def _first_lines(path: Path) -> list[dict] | None:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    return None  # the full reader reports it with its line number
                if not isinstance(row, dict):
                    return None
                rows.append(row)
            if len(rows) >= FIRST_ROWS:
                break
    return rows or None


def first_rows(spec: DatasetSpec) -> tuple[list[dict], str] | None:
    """The first rows of a generator or local .json/.jsonl file and a name for messages (None: checked later)."""
    try:
        if spec.generator is not None:
            generator = build("generators", {"generator": spec.generator, **spec.params}, "dataset.generator")
            return list(generator(min(spec.n, FIRST_ROWS), spec.seed)), f"generator {spec.generator!r}"
        path = Path(spec.path or "")
        suffix = path.suffix.lower()
        if not path.is_file() or suffix not in LOCAL_SUFFIXES or suffix == ".parquet":
            return None
        rows = _first_lines(path) if suffix == ".jsonl" else read_records(path)[:FIRST_ROWS]
    except (OSError, ValueError):
        return None  # the full loader says what is wrong with the file
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return None
    return rows, str(spec.path)


def _get(row: dict, dotted: str) -> Any:
    if dotted in row:
        return row[dotted]
    node: Any = row
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def mapped(rows: list[dict], columns: dict[str, str], where: str) -> list[dict]:
    """Rows with dataset.columns applied (as map_columns does), or the same ConfigError for a missing source."""
    if not columns:
        return rows
    out = []
    for row in rows:
        new = {k: v for k, v in row.items() if k not in columns}
        for src, dst in columns.items():
            try:
                new[dst] = _get(row, src)
            except KeyError:
                found = list(dict.fromkeys(k for r in rows for k in r))
                raise ConfigError(
                    f"dataset.columns: [{src!r}] not found in {where}; its columns are {found}.",
                    hint="map names as {name in the file: name the trainer expects}.",
                ) from None
        out.append(new)
    return out


def check_columns(stage: StageConfig, refs: dict[str, list[str]], where: str) -> None:
    """The stage's columns (and the rewards' reference columns) in the first rows, when they are cheap to read."""
    found = first_rows(stage.dataset)
    if found is None:
        return
    rows, source = found
    try:
        stage_columns(stage, _Rows(mapped(rows, stage.dataset.columns, source)), source, refs)
    except ConfigError as exc:
        raise exc.within(where) from None


def _divisors(n: int) -> list[int]:
    return [d for d in range(2, n + 1) if n % d == 0]


def _near_multiples(of: int, around: int) -> list[int]:
    low = max(of, around // of * of)
    return sorted({low, low + of} - {around})


def _check_eval_batch(stage: StageConfig, t: dict[str, Any], world: int, gens: int, where: str) -> None:
    """GRPOConfig's own rule, checked before it is imported: with evaluation on, the global eval batch holds whole
    groups of num_generations_eval (default num_generations), whether or not TRL's evaluation generates."""
    if str(t.get("eval_strategy", "no")) == "no":
        return
    try:
        per_device = int(t["per_device_eval_batch_size"])
        eval_gens = int(t["num_generations_eval"]) if t["num_generations_eval"] is not None else gens
    except (TypeError, ValueError):
        return
    if eval_gens < 1 or (per_device * world) % eval_gens == 0:
        return
    given = ", ".join(
        f"{k}={stage.trainer[k]}"
        for k in ("per_device_eval_batch_size", "num_generations_eval", "num_generations")
        if k in stage.trainer
    )
    raise ConfigError(
        f"{where}: stage {stage.label!r}: the global eval batch (per_device_eval_batch_size {per_device} x {world} "
        f"process(es)) is not a whole number of groups of num_generations_eval={eval_gens} (you set {given or 'none'}; "
        "the rest are TRL's defaults).",
        hint=f"set per_device_eval_batch_size to {' or '.join(map(str, _near_multiples(eval_gens, per_device)))}, or "
        f"num_generations_eval to one of {_divisors(per_device * world)[:6] or [1]}.",
    )


def check_grpo_batches(stage: StageConfig, where: str) -> None:
    """GRPO's generation batch holds whole groups of num_generations completions (TRL checks it only later)."""
    if stage.stage != "grpo":
        return
    t = {**GRPO_DEFAULTS, **stage.trainer}
    try:
        per_device, accum, gens = (
            int(t["per_device_train_batch_size"]),
            int(t["gradient_accumulation_steps"]),
            int(t["num_generations"]),
        )
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        steps = t["steps_per_generation"]
        batch = t["generation_batch_size"]
        batch = int(batch) if batch is not None else per_device * world * int(steps if steps is not None else accum)
    except (TypeError, ValueError):
        return  # a wrong type: the trainer-value check names it
    _check_eval_batch(stage, t, world, gens, where)
    if gens < 2 or batch % gens == 0:
        return
    keys = (
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "steps_per_generation",
        "generation_batch_size",
        "num_generations",
    )
    given = ", ".join(f"{k}={stage.trainer[k]}" for k in keys if k in stage.trainer) or "none of them"
    how = (
        "generation_batch_size"
        if t["generation_batch_size"] is not None
        else f"per_device_train_batch_size {per_device} x {world} process(es) x steps_per_generation "
        f"{steps if steps is not None else accum}"
    )
    hint = (
        f"set generation_batch_size to {' or '.join(map(str, _near_multiples(gens, batch)))}"
        if t["generation_batch_size"] is not None
        else f"set per_device_train_batch_size to {' or '.join(map(str, _near_multiples(gens, per_device)))}"
    )
    raise ConfigError(
        f"{where}: stage {stage.label!r}: GRPO generates {batch} completions per batch ({how}), "
        f"which is not a whole number of groups of num_generations={gens} completions per prompt "
        f"(you set {given}; the rest are TRL's defaults).",
        hint=f"{hint}, or num_generations to one of {_divisors(batch)[:6]} (divisors of {batch}).",
    )


def check_aggregation(stage: StageConfig, rewards: Composed | None, where: str) -> None:
    """GDPO (`multi_objective_aggregation: normalize_then_sum`) normalises each reward function within its group:
    it needs one function per component, which rewardkit hands TRL only for a weighted sum."""
    if stage.stage != "grpo" or rewards is None:
        return
    if stage.trainer.get("multi_objective_aggregation") != "normalize_then_sum" or rewards.weights is not None:
        return
    raise ConfigError(
        f"{where}: stage {stage.label!r}: trainer.multi_objective_aggregation=normalize_then_sum normalises each "
        f"reward function within its group, but rewards combine {rewards.expression!r} is not a weighted sum "
        "of the components, so TRL gets one function and cannot normalise each component.",
        hint="write combine as a weighted sum (e.g. 'acc + 0.5 * fmt'), or use sum_then_normalize.",
    )
