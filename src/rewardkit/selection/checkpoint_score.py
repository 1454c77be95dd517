"""One checkpoint's scores (`CheckpointScore`): what ranking, the bootstrap, the training reward and the records
share. Its own module so that `selection.stats` and `selection.training_reward` name the type without importing
`selection.checkpoints`, which imports them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


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
    dropped: int = 0  # rows of the file left out to compare on the ids every checkpoint shares
    none: dict[str, dict[str, int]] = field(default_factory=dict)  # alias -> {why a row scored None: rows}
    # alias -> {"view", "found", "rows", "missing"}: rows whose completion view found its part (e.g. a reason)
    coverage: dict[str, dict] = field(default_factory=dict)
    # Per-row values ({"ids", "components": {alias: [...]}, "combined"}) for the bootstrap; kept in scores.json,
    # left out of `select --json`.
    row_scores: dict | None = field(default=None, repr=False)
    # The paired bootstrap (rewardkit.selection.stats): the score's interval, the difference to the best's.
    ci_low: float | None = None
    ci_high: float | None = None
    diff_low: float | None = None
    diff_high: float | None = None
    tied_with_best: bool | None = None
    # The training reward TRL logged near this step (rewardkit.selection.training_reward): `reward` and `rewards/*`.
    train_reward: float | None = None
    train_rewards: dict[str, float] = field(default_factory=dict)
    # sha256 of the step file the scores were computed from: a recorded score is reused only for the same file.
    file_sha256: str | None = None

    def value(self, aggregate: str) -> float | None:
        """The score used for ranking: `corpus` or `item`; None when missing or not finite (never ranked)."""
        return _finite(self.corpus if aggregate == "corpus" else self.item)

    def to_dict(self, aggregate: str, rows: bool = False) -> dict:
        """JSON-ready: a non-finite mean (an expression dividing by zero) becomes None, as strict JSON needs;
        `rows` keeps the per-row values (scores.json does, so a resume can bootstrap without rescoring)."""
        out = asdict(self)
        if not rows:
            out.pop("row_scores")
        out["score"] = self.value(aggregate)
        out["components"] = {a: _finite(v) for a, v in self.components.items()}
        out["corpus"], out["item"] = _finite(self.corpus), _finite(self.item)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> CheckpointScore:
        known = {k: data[k] for k in ("name", "file", "step", "epoch", "count", "components", "corpus", "item")}
        rows, coverage = data.get("row_scores"), data.get("coverage")
        return cls(
            **known,
            dropped=data.get("dropped", 0),
            none=data.get("none") or {},
            coverage=coverage if isinstance(coverage, dict) else {},
            row_scores=rows if isinstance(rows, dict) else None,
            file_sha256=data.get("file_sha256") if isinstance(data.get("file_sha256"), str) else None,
        )


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def interval_text(low: float | None, high: float | None) -> str:
    """A 95 % interval as `select` prints it.

    >>> interval_text(0.5, 0.75), interval_text(None, 1.0)
    ('[0.5000, 0.7500]', '-')
    """
    return "-" if low is None or high is None else f"[{low:.4f}, {high:.4f}]"
