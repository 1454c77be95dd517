"""Best-checkpoint selection: score per-checkpoint inference files with a compose spec and rank them.

Used offline by `rewardkit select DIR` and online by the `best_checkpoint` callback. The files and their rows
(naming, record shape, completion field, labels, the shared row ids) are `rewardkit.selection.inference_files`'s;
this module only scores and ranks (`selection.plot` draws). Light module: no torch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardkit.composition.composed import Composed
from rewardkit.composition.scoring import score_rows, summarize
from rewardkit.core.errors import ConfigError, RewardkitError
from rewardkit.core.fileio import read_json
from rewardkit.models import compose_checked
from rewardkit.selection.checkpoint_score import CheckpointScore
from rewardkit.selection.coverage import coverage_drops
from rewardkit.selection.inference_files import (
    InferenceFile,
    find_inference_files,
    join_labels,
    keep_rows,
    load_inference,
    load_labels,
    shared_row_ids,
)
from rewardkit.selection.training_reward import attach_training_reward, divergence

if TYPE_CHECKING:
    from rewardkit.api import Overrides, SpecSource

SCORES_FILE = "scores.json"  # best_checkpoint's record in the inference folder; `select` reads its spec


def _sort_key(c: CheckpointScore) -> tuple:
    return (c.step is None, c.step or 0, c.epoch if c.epoch is not None else 0.0, c.name)


def pick_best(
    checkpoints: list[CheckpointScore], aggregate: str = "corpus", greater_is_better: bool = True
) -> CheckpointScore | None:
    """The best scored checkpoint; ties go to the earlier step (the Trainer's rule too)."""
    first = next(iter(ranked(checkpoints, aggregate, greater_is_better)), None)
    return first if first is not None and first.value(aggregate) is not None else None


def ranked(checkpoints: list[CheckpointScore], aggregate: str, greater_is_better: bool) -> list[CheckpointScore]:
    """Scored checkpoints best first (ties: earlier step first); unscorable ones last."""
    ordered = sorted(checkpoints, key=_sort_key)
    scored = [(v, c) for c in ordered if (v := c.value(aggregate)) is not None]
    scored.sort(key=lambda pair: pair[0], reverse=greater_is_better)  # stable: ties keep step order
    return [c for _, c in scored] + [c for c in ordered if c.value(aggregate) is None]


# --- scoring -------------------------------------------------------------------------------------------------
def score_checkpoint(
    composed: Composed,
    rows: list[dict],
    *,
    name: str,
    file: str,
    step: int | None,
    epoch: float | None,
    completion_key: str,
    dropped: int = 0,
) -> CheckpointScore:
    """Score rows of one checkpoint; errors are prefixed with the file name."""
    try:
        scores = score_rows(composed, rows, completion_key=completion_key)
    except RewardkitError as exc:
        raise exc.within(str(file)) from exc
    components = {alias: summarize(alias, values)["mean"] for alias, values in scores.components.items()}
    row_scores = {
        "ids": [str(r.get("id", i)) for i, r in enumerate(rows)],
        "components": scores.components,
        "combined": scores.combined,
    }
    return CheckpointScore(
        name=name,
        file=file,
        step=step,
        epoch=epoch,
        count=len(rows),
        components=components,
        corpus=scores.corpus(composed),
        item=summarize("combined", scores.combined)["mean"],
        dropped=dropped,
        none=scores.none_reasons,
        coverage=scores.coverage,
        row_scores=row_scores,
    )


@dataclass
class Selection:
    """Every checkpoint's scores, the best one and how they were computed.

    `intersection`: every checkpoint was scored on the row ids all files share; each checkpoint's `dropped`
    says how many rows of its file were left out for that.
    """

    checkpoints: list[CheckpointScore]
    best: CheckpointScore | None
    expression: str
    components: list[str]
    aggregate: str
    greater_is_better: bool
    intersection: bool = False
    policy: str = "best"
    resamples: int = 0  # bootstrap resamples behind each checkpoint's ci_low / ci_high / tied_with_best
    seed: int = 0
    tie: str | None = None  # said out loud when the top score is shared (selection_stats.tie_note)
    divergence: dict | None = None  # training reward up, held-out down over the last K (training_reward.divergence)
    coverage_drops: list[str] = field(default_factory=list)  # a view's coverage fell between checkpoints

    def to_dict(self) -> dict:
        return {
            "expression": self.expression,
            "aggregate": self.aggregate,
            "greater_is_better": self.greater_is_better,
            "intersection": self.intersection,
            "policy": self.policy,
            "bootstrap": {"resamples": self.resamples, "seed": self.seed, "level": 0.95},
            "tie": self.tie,
            "divergence": self.divergence,
            "coverage_drops": self.coverage_drops,
            "checkpoints": [c.to_dict(self.aggregate) for c in self.checkpoints],
            "best": self.best.to_dict(self.aggregate) if self.best else None,
        }


def decide(
    composed: Composed,
    checkpoints: list[CheckpointScore],
    aggregate: str,
    greater_is_better: bool,
    *,
    policy: str = "best",
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[CheckpointScore | None, str | None]:
    """Attach each checkpoint's bootstrap interval (in place) and return (the pick under `policy`, a tie note)."""
    from rewardkit.selection.stats import check_bootstrap_params, choose, paired_bootstrap, tie_note

    check_bootstrap_params(resamples, seed, policy)
    ordered = sorted(checkpoints, key=_sort_key)
    top = pick_best(ordered, aggregate, greater_is_better)
    intervals = paired_bootstrap(composed, ordered, top, aggregate, resamples=resamples, seed=seed) if top else {}
    for c in ordered:
        if c.name in intervals:
            vars(c).update(vars(intervals[c.name]))
    return choose(ordered, top, intervals, policy), tie_note(ordered, top, aggregate)


def _spec_from_record(directory: Path, overrides: Overrides | None, trust_code: bool) -> Any:
    """The spec scores.json recorded, refused when it names Python code to import, an address to send rows to or
    a hub model not in the local cache (a run folder is data: a folder someone sent must not run code, get the rows
    and the user's API key, or make the user download what it names, by being scored) unless `trust_code`; then it
    says so, once."""
    from rewardkit.api import code_uses, endpoints, load_compose_spec

    record = directory / SCORES_FILE
    spec = _recorded_spec(directory)
    recorded = load_compose_spec(spec)
    final = load_compose_spec(spec, overrides)  # an alias the user's --set gave another `use:` or URL is theirs
    sent = {alias: url for alias, url in endpoints(final).items() if endpoints(recorded).get(alias) == url}
    listed = ", ".join(f"rewards.{alias}: {key} {url!r}" for alias, (key, url) in sorted(sent.items()))
    if sent and not trust_code:  # a judge at the sender's address would get the rows and the user's api_key_env
        raise ConfigError(
            f"{record}: {listed} is an address the run folder names; select sends no rows or credentials to it.",
            hint="pass --spec with a spec of your own (it may name the same address), or --trust-run-code if you "
            "trust whoever wrote this folder.",
        )
    if sent:
        warnings.warn(f"--trust-run-code: sending rows to the addresses {record} names ({listed}).", stacklevel=3)
    if not trust_code:
        _refuse_uncached_models(record, recorded, final)
    named = code_uses(recorded)
    kept = {alias: use for alias, use in code_uses(final).items() if named.get(alias) == use}
    if not kept:
        return spec
    listed = ", ".join(f"rewards.{alias}: use {use!r}" for alias, use in sorted(kept.items()))
    if not trust_code:
        raise ConfigError(
            f"{record}: {listed} names Python code; a run folder is data and select imports no code named in it.",
            hint="pass --spec with a spec of your own (it may name the same file), or --trust-run-code if you "
            "trust whoever wrote this folder.",
        )
    warnings.warn(f"--trust-run-code: importing the code {record} names ({listed}).", UserWarning, stacklevel=3)
    return spec


def _refuse_uncached_models(record: Path, recorded: Any, final: Any) -> None:
    """Refuse a hub model id the run folder names that is not in the local cache: scoring would fetch whatever the
    sender named from the hub (a model the user's own run scored with is in their cache already)."""
    from rewardkit.models import cached, is_hub_id, spec_models

    mine = {(m.alias, m.field, m.value) for m in spec_models(final)}
    for m in spec_models(recorded):
        if m.stage is not None or (m.alias, m.field, m.value) not in mine or Path(m.value).expanduser().exists():
            continue
        if is_hub_id(m.value) and not cached(m.value, _MODEL_FILES):
            raise ConfigError(
                f"{record}: rewards.{m.alias}.{m.field} {m.value!r} is a hub model the run folder names and it is "
                "not in the local cache; select downloads nothing a run folder names.",
                hint=f"if you trust it, download it yourself (huggingface-cli download {m.value}) or pass "
                "--trust-run-code; or pass --spec with a spec of your own.",
            )


_MODEL_FILES = ("config.json", "tokenizer_config.json", "model.safetensors", "pytorch_model.bin")


def _recorded_spec(directory: Path) -> Any:
    record = directory / SCORES_FILE
    data = read_json(record) if record.is_file() else None  # a corrupt record: fileio's error names it
    spec = data.get("spec") if isinstance(data, dict) else None
    if spec is None:
        raise ConfigError(
            f"{directory}: no spec given and no {SCORES_FILE} with one.",
            hint="pass --spec spec.yaml (or a preset name such as 'official').",
        )
    return spec


def select(
    directory: str | Path,
    spec: SpecSource | None = None,
    labels: str | Path | None = None,
    *,
    aggregate: str = "corpus",
    completion_key: str | None = None,
    greater_is_better: bool = True,
    names: list[str] | None = None,
    intersection: bool = False,
    overrides: Overrides | None = None,
    policy: str = "best",
    bootstrap: int = 1000,
    seed: int = 0,
    divergence_warn: int | None = None,
    trust_code: bool = False,
) -> Selection:
    """Score every inference file in `directory` and pick the best (the spec defaults to scores.json's).

    A seeded paired bootstrap (`bootstrap` resamples of the shared row ids, the aggregate applied per resample;
    0 = off) gives each checkpoint a 95 % interval and its difference to the best's (`tied_with_best`: that
    difference's interval holds 0). `policy`: best (the top score) or earliest_tied (the earliest checkpoint
    tied with it: not significantly worse, less trained). The training reward of each step is read from the
    run's trainer_state.json when DIR is a run's inference folder (rewardkit.selection.training_reward);
    `divergence_warn=K` checks the reward-hacking rule over the last K checkpoints (`Selection.divergence`).

    Every checkpoint must have been generated on the same row ids; files that differ raise a DataError unless
    `intersection=True`, which scores each on the ids all files (and the labels) share. `completion_key=None`
    picks "completion" or "output" per file (see `rewardkit.selection.inference_files`). `overrides` change the spec's
    parameters (`["bertscore.model_type=./my-bert"]`, as `--set`); every model it names is checked first.
    Without `spec`, scores.json's is used, but code it names (`use: rewards.py:f`) is imported only with
    `trust_code=True` (a run folder is data).
    """
    directory = Path(directory)
    if aggregate not in ("corpus", "item"):
        raise ConfigError(f"aggregate {aggregate!r} is not valid.", hint="corpus | item.")
    from rewardkit.selection.stats import check_bootstrap_params

    check_bootstrap_params(bootstrap, seed, policy)  # before any file is read or any checkpoint scored
    files = find_inference_files(directory, names)
    if spec is None:
        spec = _spec_from_record(directory, overrides, trust_code)
    composed = compose_checked(spec, overrides)
    ids: dict[str, list[str]] = {}
    label_map = None
    if labels is not None:
        label_map = load_labels(labels)
        if intersection:
            ids[f"the labels {Path(labels).name}"] = list(label_map)

    def scored(f: InferenceFile, shared: set[str]) -> CheckpointScore:
        rows, dropped = keep_rows(f.rows, shared)
        if label_map is not None:
            rows = join_labels(rows, label_map, str(f.path), str(labels), f.completion_key)
        return score_checkpoint(
            composed,
            rows,
            name=f.path.stem,
            file=f.path.name,
            step=f.step,
            epoch=f.epoch,
            completion_key=f.completion_key,
            dropped=dropped,
        )

    # One file in memory at a time (memory follows the largest file, not the sum): each is scored as soon as it
    # is known to hold the same ids as the first; only --intersect (shared ids known at the end) reads twice.
    checkpoints, first, same_rows = [], None, not intersection
    for path in files:
        f = load_inference(path, completion_key)
        ids[path.name] = [str(r["id"]) for r in f.rows]
        first = set(ids[path.name]) if first is None else first
        same_rows = same_rows and first == set(ids[path.name])  # after a mismatch only the ids are collected
        if same_rows:
            checkpoints.append(scored(f, first))
        del f
    shared = shared_row_ids(ids, intersection=intersection)  # files of different rows raise here
    if intersection:
        if label_map is not None:
            label_map = {k: v for k, v in label_map.items() if k in shared}
        checkpoints = [scored(load_inference(path, completion_key), shared) for path in files]
    checkpoints.sort(key=_sort_key)
    attach_training_reward(checkpoints, directory)
    best, tie = decide(
        composed, checkpoints, aggregate, greater_is_better, policy=policy, resamples=bootstrap, seed=seed
    )
    alarm = None
    if divergence_warn is not None:
        if isinstance(divergence_warn, bool) or not isinstance(divergence_warn, int) or divergence_warn < 2:
            raise ConfigError(
                f"divergence_warn: {divergence_warn!r} is not a number of evaluations >= 2.",
                hint="--divergence-warn 3.",
            )
        alarm = divergence(
            [(c.step, c.value(aggregate), c.train_reward) for c in checkpoints], divergence_warn, greater_is_better
        )
    return Selection(
        checkpoints,
        best,
        composed.expression,
        list(composed.components),
        aggregate,
        greater_is_better,
        intersection,
        policy,
        bootstrap,
        seed,
        tie,
        alarm,
        coverage_drops(checkpoints),
    )


def none_lines(selection: Selection) -> list[str]:
    """Per component: rows that scored None over all checkpoints, and why (what `rewardkit select` prints)."""
    total = sum(c.count for c in selection.checkpoints)
    lines = []
    for alias in selection.components:
        reasons: dict[str, int] = {}
        for c in selection.checkpoints:
            for why, n in c.none.get(alias, {}).items():
                reasons[why] = reasons.get(why, 0) + n
        if reasons:
            lines.append(
                f"{alias}: None for {sum(reasons.values())} of {total} rows over {len(selection.checkpoints)} "
                f"checkpoints ({', '.join(f'{k}: {v}' for k, v in reasons.items())})"
            )
    return lines
