"""Scoring rows of completions with a composed spec (what `rewardkit score` does)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from rewardkit.composition.composed import Composed, finite_mean
from rewardkit.core.errors import DataError


@dataclass
class Scores:
    """Per-component and combined scores of a set of rows."""

    components: dict[str, list[float | None]]
    combined: list[float | None]
    none_reasons: dict[str, dict[str, int]] = field(default_factory=dict)  # alias -> {why: rows}
    # alias -> {"view", "found", "rows", "missing"}: rows whose completion view found its part (Reward.view_coverage)
    coverage: dict[str, dict[str, Any]] = field(default_factory=dict)
    usage: dict[str, dict[str, int]] = field(default_factory=dict)  # alias -> requests, cache hits, tokens (judge)

    def coverage_lines(self) -> list[str]:
        """One line per completion view: in how many rows it found its part (e.g. the reason of an answer)."""
        return [
            coverage_line(view, info) for view, info in views_coverage(self.coverage).items() if worth_showing(info)
        ]

    def usage_lines(self) -> list[str]:
        """One line per component that counts what it spends (a judge's requests, cache hits and tokens)."""
        return [f"Spent: {usage_line(alias, usage)}" for alias, usage in self.usage.items()]

    def none_lines(self) -> list[str]:
        """One line per component with None rows: how many, and why (no reference, view missed, error, ...)."""
        lines = []
        for alias, values in self.components.items():
            count = sum(v is None for v in values)
            if count:
                why = ", ".join(f"{k}: {v}" for k, v in self.none_reasons.get(alias, {}).items())
                lines.append(f"{alias}: None for {count} of {len(values)} rows ({why or 'returned None'})")
        return lines

    def summary(self) -> list[dict]:
        """Mean, std and None count (with the reasons) per component, then the combined score."""
        columns = {**self.components, "combined": self.combined}
        out = [summarize(name, values) for name, values in columns.items()]
        for entry in out[:-1]:
            entry["none_reasons"] = self.none_reasons.get(entry["name"], {})
        return out

    def corpus(self, composed: Composed) -> float | None:
        """The expression applied to component means (None excluded per component)."""
        means = {a: summarize(a, v)["mean"] for a, v in self.components.items()}
        return composed.combine_row(means)


def reward_usage(composed: Composed) -> dict[str, dict[str, int]]:
    """{alias: counters} of the components that count what they spend (a `judge`: requests, cache hits, tokens)."""
    return {
        alias: dict(usage)
        for alias, reward in composed.components.items()
        if isinstance(usage := getattr(reward, "usage", None), dict)
    }


def usage_line(alias: str, usage: dict[str, int]) -> str:
    """One line of what a component spent.

    >>> usage_line("judge", {"requests": 3, "cache_hits": 5, "prompt_tokens": 90, "completion_tokens": 9})
    'judge: 3 requests, 5 cache hits, 90 prompt + 9 completion tokens'
    """
    line = (
        f"{alias}: {usage.get('requests', 0)} requests, {usage.get('cache_hits', 0)} cache hits, "
        f"{usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} completion tokens"
    )
    extra = [f"{usage[k]} {k}" for k in ("failures", "unparsable") if usage.get(k)]
    return line + (f" ({', '.join(extra)})" if extra else "")


def views_coverage(coverage: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-component view coverage grouped by view: {view: {"found", "rows", "components", "only_found"}};
    `only_found` lists the components whose mean covers only the rows where the view found something
    (`missing: none`), the ones that leaving the part out cannot lower.

    >>> views_coverage({"r1": {"view": "reason", "found": 1, "rows": 4, "missing": "none"}})
    {'reason': {'found': 1, 'rows': 4, 'components': ['r1'], 'only_found': ['r1']}}
    """
    out: dict[str, dict[str, Any]] = {}
    for alias, info in coverage.items():
        entry = out.setdefault(
            str(info["view"]), {"found": info["found"], "rows": info["rows"], "components": [], "only_found": []}
        )
        entry["components"].append(alias)
        if info.get("missing") == "none":
            entry["only_found"].append(alias)
    return out


def worth_showing(info: dict[str, Any]) -> bool:
    """A view's coverage matters when it missed rows, or when a component's mean covers only the rows it found."""
    return bool(info["only_found"]) or info["found"] < info["rows"]


def coverage_line(view: str, info: dict[str, Any]) -> str:
    """`reason coverage: 1/12 rows (rouge1, bertscore average over these rows only)`."""
    line = f"{view} coverage: {info['found']}/{info['rows']} rows"
    if info["only_found"] and info["found"] < info["rows"]:
        line += f" ({', '.join(info['only_found'])} average over these rows only)"
    return line


def summarize(name: str, values: list[float | None]) -> dict:
    present = [v for v in values if v is not None]
    return {
        "name": name,
        "mean": finite_mean(present) if present else None,
        "std": statistics.pstdev(present) if len(present) > 1 else (0.0 if present else None),
        "none": len(values) - len(present),
        "count": len(values),
    }


def score_rows(
    composed: Composed, rows: list[dict], completion_key: str = "completion", prompt_key: str = "prompt"
) -> Scores:
    """Score dict rows: `completion_key` holds completions, every other key is passed as a column."""
    if not rows:
        raise DataError("No rows to score.", hint="the input file is empty.")
    missing = [i for i, row in enumerate(rows) if completion_key not in row]
    if missing:
        raise DataError(
            f"Rows {missing[:10]} have no {completion_key!r} field (fields of row {missing[0]}: "
            f"{sorted(rows[missing[0]])}).",
            hint="pass --completion-key.",
        )
    columns: dict[str, list[Any]] = {}
    keys = sorted({k for row in rows for k in row} - {completion_key, prompt_key})
    for key in keys:
        columns[key] = [row.get(key) for row in rows]
    prompts = [row.get(prompt_key) for row in rows]
    completions = [row[completion_key] for row in rows]
    components = composed.score_components(prompts=prompts, completions=completions, **columns)
    reasons = {
        alias: dict(getattr(reward, "none_reasons", None) or {}) for alias, reward in composed.components.items()
    }
    for alias, values in components.items():  # a reward that keeps no reasons (a nested Composed, a plugin's own)
        if not reasons[alias] and None in values:
            reasons[alias] = {"returned None": values.count(None)}
    coverage = {
        alias: dict(info)
        for alias, reward in composed.components.items()
        if isinstance(info := getattr(reward, "view_coverage", None), dict)
    }
    return Scores(components, composed.combine(components), reasons, coverage, reward_usage(composed))
