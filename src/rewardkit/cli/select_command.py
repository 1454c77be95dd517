"""`rewardkit select DIR`: score every checkpoint's inference file and name the best (registered in cli.main)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from rewardkit.cli.console import ERR as err
from rewardkit.cli.console import OUT as console
from rewardkit.cli.reports import print_selection


def select_cmd(
    directory: Path = typer.Argument(..., metavar="DIR", help="Folder with step_N.json / inference_epochE.json files."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="References joined by id (JSON list or JSONL)."),
    spec: Optional[str] = typer.Option(
        None, "--spec", help="Compose spec file or preset (default: DIR/scores.json's)."
    ),
    trust_run_code: bool = typer.Option(
        False,
        "--trust-run-code",
        help="Import Python code, and send rows to addresses, that DIR/scores.json's spec names (off: a run "
        "folder is data).",
    ),
    aggregate: str = typer.Option("corpus", help="corpus (combine the component means) | item (mean of row scores)."),
    completion_key: Optional[str] = typer.Option(
        None,
        help="Record field holding the generated text (default: 'completion' when the records have it, else 'output').",
    ),
    intersect: bool = typer.Option(
        False,
        "--intersect",
        help="Score every checkpoint on the row ids all files share (default: files with different rows are an error).",
    ),
    lower_is_better: bool = typer.Option(False, "--lower-is-better", help="Pick the lowest score."),
    checkpoint: Optional[list[str]] = typer.Option(None, "--checkpoint", help="Only this file of DIR (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    plot: Optional[Path] = typer.Option(
        None, "--plot", help="Write a plot of each metric against the step (.png, .svg, .pdf... by the suffix)."
    ),
    overrides: Optional[list[str]] = typer.Option(
        None, "--set", help="Change a reward parameter of the spec: --set bertscore.model_type=./my-bert (repeatable)."
    ),
    policy: str = typer.Option(
        "best",
        help="best (the top score) | earliest_tied (the earliest checkpoint whose "
        "difference to the best has a 95% interval holding 0).",
    ),
    bootstrap: int = typer.Option(1000, help="Paired bootstrap resamples for the 95% intervals (0: off)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    divergence_warn: Optional[int] = typer.Option(
        None,
        help="Reward-hacking check: say when the training reward rose and the score fell over the last K checkpoints.",
    ),
) -> None:
    """Score every checkpoint's inference file in DIR and name the best one."""
    from rewardkit.selection import checkpoints as selection
    from rewardkit.selection.plot import plot_format, write_plot

    if plot is not None:
        from rewardkit.core.fileio import check_output

        check_output(plot)  # refused before every checkpoint is scored, not after
        plot_format(plot)
    result = selection.select(
        directory,
        spec,
        labels,
        aggregate=aggregate,
        completion_key=completion_key,
        greater_is_better=not lower_is_better,
        names=checkpoint,
        intersection=intersect,
        overrides=overrides,
        policy=policy,
        bootstrap=bootstrap,
        seed=seed,
        divergence_warn=divergence_warn,
        trust_code=trust_run_code,
    )
    if plot is not None:
        write_plot(result, plot)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    print_selection(console, err, result, divergence_warn)
    if plot is not None:
        console.print(Text(f"Plot: {plot}"))
