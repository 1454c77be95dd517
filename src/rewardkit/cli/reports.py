"""What `rewardkit select` and `rewardkit train` print for a person (their `--json` forms are the results' dicts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Optional

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rewardkit.cli.console import print_table

if TYPE_CHECKING:  # the selection modules load with `rewardkit select`, not with every command
    from pathlib import Path

    from rewardkit.selection.checkpoints import Selection
    from rewardkit.train.summary import StageResult


def fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


def interval(low: Optional[float], high: Optional[float]) -> str:
    from rewardkit.selection.checkpoint_score import interval_text

    return interval_text(low, high)


def print_selection(console: Console, err: Console, result: Selection, divergence_warn: Optional[int]) -> None:
    """Print a selection for a person (the `--json` form is `result.to_dict()`)."""
    from rewardkit.selection.checkpoints import none_lines
    from rewardkit.selection.coverage import coverage_cell, coverage_views

    table = Table(title=f"{len(result.checkpoints)} checkpoints, {result.aggregate} score = {result.expression}")
    with_ci = result.resamples > 0
    with_train = any(c.train_reward is not None for c in result.checkpoints)
    views = coverage_views(result.checkpoints)
    extra = [*(["95% CI", "vs best (95% CI)"] if with_ci else []), *(["train reward"] if with_train else [])]
    for col in ("checkpoint", "step", "epoch", *result.components, *(f"{v} coverage" for v in views), "score", *extra):
        table.add_column(Text(col), justify="left" if col == "checkpoint" else "right")
    for c in result.checkpoints:
        mark = " *" if c is result.best else ""
        cells = (
            [
                interval(c.ci_low, c.ci_high),
                interval(c.diff_low, c.diff_high) + (" tied" if c.tied_with_best and c is not result.best else ""),
            ]
            if with_ci
            else []
        )
        table.add_row(
            Text(c.name + mark),
            "-" if c.step is None else str(c.step),
            fmt(c.epoch),
            *(fmt(c.components[a]) for a in result.components),
            *(coverage_cell(c, v) for v in views),
            fmt(c.value(result.aggregate)),
            *cells,
            *([fmt(c.train_reward)] if with_train else []),
        )
    print_table(console, table)
    for line in none_lines(result):
        console.print(Text(f"None rows: {line}"), soft_wrap=True)
    if with_ci:
        console.print(
            Text(
                f"Intervals: paired bootstrap, {result.resamples} resamples of the same rows, seed "
                f"{result.seed}; 'tied' = not significantly different from the best. Policy: "
                f"{result.policy}."
            ),
            soft_wrap=True,
        )
    if result.tie:
        console.print(Text(f"Tie: {result.tie}"), soft_wrap=True)
    for line in result.coverage_drops:
        err.print(Text(f"Warning: {line}."), soft_wrap=True)
    if result.divergence:
        err.print(Text(f"Reward-hacking alarm: {result.divergence['message']}."), soft_wrap=True)
    elif divergence_warn is not None and not any(c.train_reward is not None for c in result.checkpoints):
        err.print(
            Text("No training reward found (no trainer_state.json next to DIR): the divergence check could not run."),
            soft_wrap=True,
        )
    if result.intersection:
        dropped = ", ".join(f"{c.name}: {c.dropped}" for c in result.checkpoints if c.dropped)
        console.print(Text(f"Scored on the row ids all files share; rows dropped: {dropped or 'none'}."))
    if result.best is None:
        err.print("[yellow]No checkpoint has a score[/yellow] (every row was None).")
    else:
        console.print(
            Text(f"Best: {result.best.name} ({result.best.file}, score {fmt(result.best.value(result.aggregate))})")
        )


def print_train_results(
    console: Console, config: str | Path, results: list[StageResult], say: Callable[[str], None]
) -> None:
    """The table of trained stages, then what each run found (`train.summary`)."""
    from rewardkit.train.summary import summary_lines

    table = Table(title=f"{config}: {len(results)} stage(s)", title_justify="left")
    for col in ("stage", "name", "steps", "train loss", "time (s)", "model"):
        table.add_column(
            col, justify="right" if col in ("steps", "train loss", "time (s)") else "left", overflow="fold"
        )
    for r in results:
        table.add_row(r.stage, Text(r.name), str(r.steps), fmt(r.train_loss), f"{r.runtime_s:.1f}", Text(r.model))
    print_table(console, table)
    for r in results:
        for line in summary_lines(r, str(config)):
            say(line)
