"""Dataset loading (hub, local file, generator), column mapping and the per-stage column check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rewardkit.api import build
from rewardkit.core.errors import ConfigError, DataError
from rewardkit.core.fileio import read_records
from rewardkit.train.config import DatasetSpec, StageConfig

if TYPE_CHECKING:
    from datasets import Dataset

    from rewardkit.composition.composed import Composed

LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet")
# What each stage's TRL trainer reads; SFT accepts any one of its forms.
SFT_FORMS = (("messages",), ("prompt", "completion"), ("text",))
NEEDS = {
    "sft": "one of: messages | prompt + completion | text",
    "rm": "chosen + rejected",
    "dpo": "prompt + chosen + rejected (prompt may be implicit in conversational chosen/rejected)",
    "grpo": "prompt + the rewards' reference columns",
}


def _from_rows(rows: Any, where: str) -> Dataset:
    from datasets import Dataset

    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise DataError(
            f"{where}: expected a non-empty list of objects (one per row).",
            hint="JSONL with one object per line, or a JSON list.",
        )
    try:
        return Dataset.from_list(rows)
    except Exception as exc:  # pyarrow type clashes, e.g. a column holding both numbers and strings
        raise DataError(
            f"{where}: rows do not form a table ({type(exc).__name__}: {exc}).",
            hint="give every row the same fields with the same types.",
        ) from None


def check_suffix(path: Path) -> str:
    """The file's suffix, one the loader reads (.json, .jsonl, .parquet); anything else is refused."""
    suffix = path.suffix.lower()
    if suffix not in LOCAL_SUFFIXES:
        raise ConfigError(
            f"dataset file {str(path)!r}: unsupported type {suffix or '(no suffix)'!r}.",
            hint="use "
            f"{', '.join(LOCAL_SUFFIXES)} (convert CSV with pandas: df.to_json(path, orient='records', "
            "lines=True)).",
        )
    return suffix


def load_local(path: str | Path) -> Dataset:
    """A local .json / .jsonl / .parquet file as a Dataset."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"dataset file {str(path)!r} is a directory.", hint="name the .json/.jsonl/.parquet file.")
    if not path.is_file():
        raise ConfigError(
            f"dataset file {str(path)!r} does not exist.",
            hint="check the path (relative paths start at the current directory).",
        )
    suffix = check_suffix(path)
    if suffix == ".parquet":
        from datasets import load_dataset

        try:
            return load_dataset("parquet", data_files=str(path), split="train")
        except Exception as exc:  # pyarrow: not parquet, truncated, unreadable
            raise DataError(
                f"dataset file {str(path)!r} is not a readable parquet file ({type(exc).__name__}: {str(exc)[:200]}).",
                hint="check the file, or use .jsonl.",
            ) from None
    return _from_rows(read_records(path), str(path))


def is_local(path: str) -> bool:
    """Whether a dataset path names a local file (a known suffix, or it exists) rather than a hub id."""
    return Path(path).suffix.lower() in LOCAL_SUFFIXES or Path(path).exists()


def load_hub(path: str, name: str | None, split: str) -> Dataset:
    """A split of a Hub dataset; failures explain how to go offline."""
    from datasets import load_dataset

    try:
        return load_dataset(path, name, split=split)
    except Exception as exc:
        raise DataError(
            f"dataset {path!r} (split {split!r}) could not be loaded: {type(exc).__name__}: {str(exc)[:300]}.",
            hint="offline (HF_HUB_OFFLINE=1) use a local file, e.g. --set dataset.path=rows.jsonl.",
        ) from None


def _load(spec: DatasetSpec) -> tuple[Dataset, str]:
    if spec.generator is not None:
        generator = build("generators", {"generator": spec.generator, **spec.params}, "dataset.generator")
        return _from_rows(generator(spec.n, spec.seed), spec.generator), f"generator {spec.generator!r}"
    assert spec.path is not None
    if is_local(spec.path):
        return load_local(spec.path), spec.path
    return load_hub(spec.path, spec.name, spec.split), spec.path


def map_columns(ds: Dataset, columns: dict[str, str], where: str) -> Dataset:
    """Rename columns; dotted names ('input.question') flatten nested objects first."""
    if not columns:
        return ds
    if any(src not in ds.column_names and "." in src for src in columns):
        ds = ds.flatten()
    missing = [src for src in columns if src not in ds.column_names]
    if missing:
        raise ConfigError(
            f"dataset.columns: {missing} not found in {where}; its columns are {ds.column_names}.",
            hint="map names as {name in the file: name the trainer expects}.",
        )
    clash = [dst for src, dst in columns.items() if dst in ds.column_names and dst not in columns and dst != src]
    if clash:
        ds = ds.remove_columns(clash)  # the mapped column replaces an existing one of that name
    return ds.rename_columns({src: dst for src, dst in columns.items() if src != dst})


P = TypeVar("P")  # a prompt: a string, or chat messages left as they are


def chat_prompt(prompt: P, chat: bool, system_prompt: str | None) -> P | list[dict[str, str]]:
    """A string prompt as chat messages (system prompt first) when `chat` or `system_prompt` is set; chat-message
    prompts are left as they are. Training data and `rewardkit generate` wrap prompts with this one function."""
    if not (chat or system_prompt) or not isinstance(prompt, str):
        return prompt
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return system + [{"role": "user", "content": prompt}]


def _chat(ds: Dataset, spec: DatasetSpec) -> Dataset:
    """String prompts/completions as chat messages (system prompt first)."""
    if not (spec.chat or spec.system_prompt) or "prompt" not in ds.column_names:
        return ds

    def wrap(row: dict) -> dict:
        out = {}
        if isinstance(row["prompt"], str):
            out["prompt"] = chat_prompt(row["prompt"], spec.chat, spec.system_prompt)
        if isinstance(row.get("completion"), str):
            out["completion"] = [{"role": "assistant", "content": row["completion"]}]
        return out

    return ds.map(wrap)


def reference_columns(composed: Composed) -> dict[str, list[str]]:
    """Dataset columns the composed reward reads as references: {column: [aliases]}."""
    needed: dict[str, list[str]] = {}
    for alias, reward in getattr(composed, "components", {}).items():
        params = getattr(reward, "params", None)
        column = getattr(params, "reference", None)
        if getattr(reward, "needs_reference", False) and column:
            needed.setdefault(column, []).append(alias)
    return needed


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m for m in value)


def stage_columns(stage: StageConfig, ds: Dataset, where: str, refs: dict[str, list[str]]) -> list[str]:
    """The columns the stage uses; a ConfigError naming stage, found and needed columns when some are missing."""
    found = ds.column_names
    kind = stage.stage
    keep: list[str] | None = None
    missing: list[str] = []
    if kind == "sft":
        keep = next((list(f) for f in SFT_FORMS if all(c in found for c in f)), None)
        if keep is None:
            missing = ["messages"] if "prompt" not in found else ["completion"]
    elif kind in ("rm", "dpo"):
        missing = [c for c in ("chosen", "rejected") if c not in found]
        implicit = not missing and len(ds) and _is_messages(ds[0]["chosen"])
        if kind == "dpo" and "prompt" not in found and not implicit and not missing:
            missing = ["prompt"]
        keep = [c for c in ("prompt", "chosen", "rejected") if c in found]
    else:
        missing = [c for c in ["prompt", *refs] if c not in found]
    if missing:
        readers = "".join(f"; {c!r} is read by reward {', '.join(refs[c])}" for c in missing if c in refs)
        raise ConfigError(
            f"stage {stage.label!r} ({kind}): {where} has columns {found}, missing {missing}. "
            f"{kind.upper()} needs {NEEDS[kind]}{readers}.",
            hint="map your names with dataset.columns, e.g. columns: {question: prompt, solution: answer}.",
        )
    return keep if keep is not None else found


def _sized(ds: Dataset, limit: int | None) -> Dataset:
    return ds.select(range(min(limit, len(ds)))) if limit else ds


def load_stage_data(stage: StageConfig, refs: dict[str, list[str]]) -> tuple[Dataset, Dataset | None]:
    """Train and optional eval datasets, mapped, chat-wrapped and checked for the stage's columns."""
    spec = stage.dataset
    ds, where = _load(spec)
    ds = _chat(map_columns(_sized(ds, spec.max_rows), spec.columns, where), spec)
    eval_ds, eval_where = None, ""
    if spec.eval_size is not None:
        size = spec.eval_size if spec.eval_size < 1 else int(spec.eval_size)
        if isinstance(size, int) and size >= len(ds):
            raise ConfigError(
                f"dataset.eval_size={spec.eval_size} leaves no training rows ({len(ds)} rows).",
                hint="use a fraction such as 0.1.",
            )
        parts = ds.train_test_split(test_size=size, seed=spec.seed)
        ds, eval_ds, eval_where = parts["train"], parts["test"], f"{where} (eval_size split)"
    elif spec.eval_file is not None or spec.eval_split is not None:
        if spec.eval_file is not None:
            eval_ds, eval_where = load_local(spec.eval_file), spec.eval_file
        elif spec.eval_split is not None:  # always, once eval_file is None
            if spec.path is None or is_local(spec.path):
                raise ConfigError(
                    "dataset.eval_split works with hub datasets only.",
                    hint="use eval_file or eval_size for local files and generators.",
                )
            eval_ds, eval_where = load_hub(spec.path, spec.name, spec.eval_split), f"{spec.path}[{spec.eval_split}]"
        eval_ds = _chat(map_columns(_sized(eval_ds, spec.eval_max_rows), spec.columns, eval_where), spec)
    keep = stage_columns(stage, ds, where, refs)
    if eval_ds is not None:
        stage_columns(stage, eval_ds, eval_where, refs)
    if stage.stage != "grpo":  # TRL tokenizes only its own columns; others (nested objects) would trip the collator
        ds = ds.select_columns(keep)
        eval_ds = eval_ds.select_columns(keep) if eval_ds is not None else None
    return ds, eval_ds
