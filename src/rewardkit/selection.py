"""Best-checkpoint selection: score per-checkpoint inference files with a compose spec, rank them, plot them.

Used offline by `rewardkit select DIR` and online by the `best_checkpoint` callback. The files and their rows
(naming, record shape, completion field, labels, the shared row ids) are `rewardkit.inference_files`'s;
this module only scores and ranks. Light module: no torch, matplotlib on demand.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .api import compose, load_spec
from .compose import Composed
from .errors import ConfigError, RewardkitError
from .fileio import atomic_write_bytes, read_json
from .inference_files import find_inference_files, join_labels, keep_rows, load_inference, load_labels, shared_row_ids
from .scoring import score_rows, summarize

SCORES_FILE = "scores.json"  # best_checkpoint's record in the inference folder; `select` reads its spec


@dataclass
class CheckpointScore:
    """Scores of one inference file: per-component means, the corpus and item aggregates."""

    name: str
    file: str
    step: int | None
    epoch: float | None
    count: int
    components: dict[str, float | None]
    corpus: float | None
    item: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def value(self, aggregate: str) -> float | None:
        """The score used for ranking: `corpus` or `item`."""
        return self.corpus if aggregate == "corpus" else self.item

    def to_dict(self, aggregate: str) -> dict:
        out = asdict(self)
        out.pop("extra")
        out["score"] = self.value(aggregate)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> CheckpointScore:
        known = {k: data[k] for k in ("name", "file", "step", "epoch", "count", "components", "corpus", "item")}
        return cls(**known)


def _sort_key(c: CheckpointScore) -> tuple:
    return (c.step is None, c.step or 0, c.epoch if c.epoch is not None else 0.0, c.name)


def pick_best(checkpoints: list[CheckpointScore], aggregate: str = "corpus",
              greater_is_better: bool = True) -> CheckpointScore | None:
    """The best scored checkpoint; ties go to the earlier step (the Trainer's rule too)."""
    best = None
    for c in sorted(checkpoints, key=_sort_key):
        v = c.value(aggregate)
        if v is None:
            continue
        if best is None or (v > best.value(aggregate) if greater_is_better else v < best.value(aggregate)):
            best = c
    return best


def ranked(checkpoints: list[CheckpointScore], aggregate: str, greater_is_better: bool) -> list[CheckpointScore]:
    """Scored checkpoints best first (ties: earlier step first); unscorable ones last."""
    ordered = sorted(checkpoints, key=_sort_key)
    scored = [c for c in ordered if c.value(aggregate) is not None]
    scored.sort(key=lambda c: c.value(aggregate), reverse=greater_is_better)  # stable: ties keep step order
    return scored + [c for c in ordered if c.value(aggregate) is None]


# --- reading files -------------------------------------------------------------------------------------------
def _normalize(item: Any, index: int, where: str, completion_key: str) -> dict:
    if not isinstance(item, dict):
        raise DataError(f"{where}: record {index} must be an object, got {type(item).__name__}. Hint: records "
                        'look like {"id": ..., "output": "..."}.')
    row = {k: v for k, v in item.items() if not (k == "input" and isinstance(v, dict))}
    if isinstance(item.get("input"), dict):
        for key, value in item["input"].items():
            row.setdefault(key, value)
    if completion_key not in row:
        raise DataError(f"{where}: record {index} has no {completion_key!r} field (fields: {sorted(item)}). "
                        "Hint: pass the field holding the generated text as completion_key / --completion-key.")
    out = row[completion_key]
    if isinstance(out, dict):
        if not isinstance(out.get("answer"), str):
            raise DataError(f"{where}: record {index}: {completion_key!r} is an object without a string "
                            "'answer'. Hint: competition records look like {\"output\": {\"answer\": \"...\"}}.")
        row[completion_key] = out["answer"]
    row.setdefault("id", index)
    return row


def load_inference(path: str | Path, completion_key: str = "output") -> tuple[int | None, float | None, list[dict]]:
    """(step, epoch, rows) of one inference file in rewardkit or list format; errors name the file."""
    path = Path(path)
    data = read_json(path)
    step = epoch = None
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        step, epoch, records = data.get("step"), data.get("epoch"), data["records"]
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
            raise DataError(f"{path}: 'step' must be a non-negative integer, got {step!r}.")
        if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, (int, float))):
            raise DataError(f"{path}: 'epoch' must be a number, got {epoch!r}.")
    elif isinstance(data, list):
        records = data
    else:
        raise DataError(f"{path}: expected a list of records or an object with 'records', got "
                        f"{type(data).__name__}. Hint: see `rewardkit select --help` for the file shapes.")
    if step is None and (m := STEP_FILE.match(path.name)):
        step = int(m.group(1))
    if epoch is None and (m := SEED_FILE.match(path.name)):
        epoch = float(m.group(1))
    if not records:
        raise DataError(f"{path}: no records. Hint: the inference run wrote nothing; re-run it or delete the file.")
    return step, None if epoch is None else float(epoch), normalize_records(records, str(path), completion_key)


def normalize_records(records: list, where: str, completion_key: str = "output") -> list[dict]:
    """Flat rows (completion text under `completion_key`, "input" flattened, ids unique); errors name `where`."""
    rows = [_normalize(item, i, where, completion_key) for i, item in enumerate(records)]
    _check_unique([str(r["id"]) for r in rows], where)
    return rows


def _check_unique(ids: list[str], where: str) -> None:
    seen, dups = set(), []
    for i in ids:
        if i in seen and i not in dups:
            dups.append(i)
        seen.add(i)
    if dups:
        raise DataError(f"{where}: duplicate ids {dups[:10]}. Hint: ids must be unique to join references.")


def load_labels(path: str | Path) -> dict[str, dict]:
    """Reference columns by id (as str) from a JSON list / JSONL file, competition or flat records."""
    path = Path(path)
    items = read_jsonl(path) if path.suffix.lower() == ".jsonl" else read_json(path)
    if not isinstance(items, list) or not items:
        raise DataError(f"{path}: labels must be a non-empty list of records. Hint: [{{\"id\": ..., "
                        "\"answer\": ...}] or competition items with output.answer.")
    labels: dict[str, dict] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "id" not in item:
            raise DataError(f"{path}: label {i} has no 'id'. Hint: every label needs the id of its record.")
        if isinstance(item.get("output"), dict):
            columns = dict(item["input"]) if isinstance(item.get("input"), dict) else {}
            if "answer" not in item["output"]:
                raise DataError(f"{path}: label {i} (id {item['id']!r}) has an 'output' without 'answer'.")
            columns["answer"] = item["output"]["answer"]
        else:
            columns = {k: v for k, v in item.items() if k != "id"}
        key = str(item["id"])
        if key in labels:
            raise DataError(f"{path}: duplicate label id {key!r}. Hint: ids must be unique.")
        labels[key] = columns
    return labels


def join_labels(rows: list[dict], labels: dict[str, dict], where: str, labels_path: str,
                completion_key: str = "output") -> list[dict]:
    """Add each row's label columns (labels win); missing or extra ids raise, naming them."""
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
        raise DataError(f"{where}: {'; '.join(parts)} ({labels_path}). Hint: inference and labels must cover "
                        "the same validation set; regenerate the file or pass the matching labels.")
    return [{**row, **{k: v for k, v in labels[str(row["id"])].items() if k != completion_key}} for row in rows]


# --- scoring -------------------------------------------------------------------------------------------------
def score_checkpoint(composed: Composed, rows: list[dict], *, name: str, file: str, step: int | None,
                     epoch: float | None, completion_key: str = "output") -> CheckpointScore:
    """Score rows of one checkpoint; errors are prefixed with the file name."""
    try:
        scores = score_rows(composed, rows, completion_key=completion_key)
    except RewardkitError as exc:
        raise type(exc)(f"{file}: {exc}") from exc
    components = {alias: summarize(alias, values)["mean"] for alias, values in scores.components.items()}
    return CheckpointScore(name=name, file=file, step=step, epoch=epoch, count=len(rows), components=components,
                           corpus=scores.corpus(composed), item=summarize("combined", scores.combined)["mean"])


def resolve_spec(spec: Any) -> dict:
    """The spec as a plain dict (a path is read, a preset looked up), e.g. to record it next to the scores."""
    return load_spec(spec)[0]


def find_inference_files(directory: str | Path, names: list[str] | None = None) -> list[Path]:
    """step_N.json / inference_epochE.json files in `directory`, or the named ones (kept inside it)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory. Hint: pass the inference folder (e.g. out/inference).")
    if names:
        files = []
        for name in names:
            path = safe_child(directory, name if name.endswith(".json") else f"{name}.json", "checkpoint")
            if not path.is_file():
                raise DataError(f"{path}: no such inference file. Hint: `ls {directory}`.")
            files.append(path)
        return files
    files = sorted(p for p in directory.iterdir() if p.is_file() and (STEP_FILE.match(p.name)
                                                                        or SEED_FILE.match(p.name)))
    if not files:
        raise DataError(f"{directory}: no inference files (step_N.json or inference_epochE.json). Hint: run "
                        "training with the checkpoint_inference callback, or point at the folder holding them.")
    return files


@dataclass
class Selection:
    """Every checkpoint's scores, the best one and how they were computed."""

    checkpoints: list[CheckpointScore]
    best: CheckpointScore | None
    expression: str
    components: list[str]
    aggregate: str
    greater_is_better: bool

    def to_dict(self) -> dict:
        return {"expression": self.expression, "aggregate": self.aggregate,
                "greater_is_better": self.greater_is_better,
                "checkpoints": [c.to_dict(self.aggregate) for c in self.checkpoints],
                "best": self.best.to_dict(self.aggregate) if self.best else None}


def _spec_from_record(directory: Path) -> Any:
    record = directory / SCORES_FILE
    spec = read_json(record).get("spec") if record.is_file() else None
    if spec is None:
        raise ConfigError(f"{directory}: no spec given and no {SCORES_FILE} with one. Hint: pass --spec "
                          "spec.yaml (or a preset name such as 'official').")
    return spec


def select(directory: str | Path, spec: Any = None, labels: str | Path | None = None, *,
           aggregate: str = "corpus", completion_key: str = "output", greater_is_better: bool = True,
           names: list[str] | None = None) -> Selection:
    """Score every inference file in `directory` and pick the best (the spec defaults to scores.json's)."""
    directory = Path(directory)
    if aggregate not in ("corpus", "item"):
        raise ConfigError(f"aggregate {aggregate!r} is not valid. Hint: corpus | item.")
    files = find_inference_files(directory, names)
    composed = compose(spec if spec is not None else _spec_from_record(directory))
    label_map = load_labels(labels) if labels is not None else None
    checkpoints = []
    for path in files:
        step, epoch, rows = load_inference(path, completion_key)
        if label_map is not None:
            rows = join_labels(rows, label_map, str(path), str(labels), completion_key)
        checkpoints.append(score_checkpoint(composed, rows, name=path.stem, file=path.name, step=step, epoch=epoch,
                                            completion_key=completion_key))
    checkpoints.sort(key=_sort_key)
    return Selection(checkpoints, pick_best(checkpoints, aggregate, greater_is_better), composed.expression,
                     list(composed.components), aggregate, greater_is_better)


# --- plot ----------------------------------------------------------------------------------------------------
def _atomic_write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_plot(selection: Selection, path: str | Path) -> Path:
    """A PNG of each component mean and the score against the step (or epoch), best marked."""
    # Figure + Agg canvas instead of pyplot: no global backend switch inside a user's session.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cps = selection.checkpoints
    if all(c.step is not None for c in cps):
        xs, xlabel = [c.step for c in cps], "step"
    elif all(c.epoch is not None for c in cps):
        xs, xlabel = [c.epoch for c in cps], "epoch"
    else:
        xs, xlabel = list(range(len(cps))), "checkpoint (file order)"
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    series = {a: [c.components.get(a) for c in cps] for a in selection.components}
    series["score"] = [c.value(selection.aggregate) for c in cps]
    for label, ys in series.items():
        pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                    linewidth=2.5 if label == "score" else 1.2, label=label)
    if selection.best is not None:
        bx = xs[cps.index(selection.best)]
        ax.axvline(bx, color="grey", linestyle="--", linewidth=1, label=f"best ({selection.best.name})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("score")
    ax.set_title(f"{selection.aggregate} score: {selection.expression}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return _atomic_write_bytes(Path(path), buf.getvalue())
