"""The `rewardkit` command: parses arguments and prints; the work happens in the library modules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import RewardkitError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Rewards, callbacks and runs for TRL.")
console = Console()
err = Console(stderr=True)


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List rewards, callbacks, views, tokenizers and presets with their source."""
    from .catalog import catalog

    data = catalog()
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for kind in ("rewards", "callbacks", "views", "tokenizers", "presets"):
        table = Table(title=kind, title_justify="left")
        for col in ("name", "source", "summary"):
            table.add_column(col)
        for entry in data[kind]:
            # Summaries are plugin text: show it literally ("[a-z0-9]" is not rich markup).
            table.add_row(Text(entry["name"]), Text(f"{entry['source']} {entry['version']}"), Text(entry["summary"]))
        console.print(table)
    for failed in data["failed_plugins"]:
        err.print(f"[red]failed plugin[/red] {failed['name']} {failed['version']}: {failed['error']}")
    for kind, names in data["conflicts"].items():
        for name, qualified in names.items():
            err.print(f"[yellow]conflict[/yellow] {kind[:-1]} {name!r}: use one of {', '.join(qualified)}")


@app.command()
def score(
    spec: str = typer.Argument(..., help="Compose spec: YAML/TOML/JSON file or preset name."),
    input: Path = typer.Option(..., "--input", "-i", help="JSONL rows with completion, prompt and references."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write rows with scores as JSONL."),
    completion_key: str = typer.Option("completion", help="Field holding the completion."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Score completions with a composed reward spec."""
    from .compose import compose
    from .fileio import atomic_write_text, read_jsonl
    from .scoring import score_rows

    composed = compose(spec)
    rows = read_jsonl(input)
    scores = score_rows(composed, rows, completion_key=completion_key)
    summary = scores.summary()
    if output is not None:
        lines = []
        for i, row in enumerate(rows):
            out = dict(row, scores={a: v[i] for a, v in scores.components.items()}, combined=scores.combined[i])
            lines.append(json.dumps(out, ensure_ascii=False))
        atomic_write_text(output, "\n".join(lines) + "\n")
    if as_json:
        typer.echo(json.dumps({"summary": summary, "corpus": scores.corpus(composed)}, indent=2))
        return
    table = Table(title=f"{len(rows)} rows scored with {composed.expression}")
    for col in ("component", "mean", "std", "None"):
        table.add_column(col, justify="right" if col != "component" else "left")
    for s in summary:
        table.add_row(s["name"], _fmt(s["mean"]), _fmt(s["std"]), str(s["none"]))
    console.print(table)


@app.command("select")
def select_cmd(
    directory: Path = typer.Argument(..., help="Folder with step_N.json / inference_epochE.json files."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="References joined by id (JSON list or JSONL)."),
    spec: Optional[str] = typer.Option(None, "--spec", help="Compose spec file or preset (default: DIR/scores.json's)."),
    aggregate: str = typer.Option("corpus", help="corpus (combine the component means) | item (mean of row scores)."),
    completion_key: str = typer.Option("output", help="Record field holding the generated text."),
    lower_is_better: bool = typer.Option(False, "--lower-is-better", help="Pick the lowest score."),
    checkpoint: Optional[list[str]] = typer.Option(None, "--checkpoint", help="Only this file of DIR (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG of each metric against the step."),
) -> None:
    """Score every checkpoint's inference file in DIR and name the best one."""
    from . import selection

    result = selection.select(directory, spec, labels, aggregate=aggregate, completion_key=completion_key,
                              greater_is_better=not lower_is_better, names=checkpoint)
    if plot is not None:
        selection.write_plot(result, plot)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{len(result.checkpoints)} checkpoints, {result.aggregate} score = {result.expression}")
    for col in ("checkpoint", "step", "epoch", *result.components, "score"):
        table.add_column(Text(col), justify="left" if col == "checkpoint" else "right")
    for c in result.checkpoints:
        mark = " *" if c is result.best else ""
        table.add_row(Text(c.name + mark), "-" if c.step is None else str(c.step), _fmt(c.epoch),
                      *(_fmt(c.components[a]) for a in result.components), _fmt(c.value(result.aggregate)))
    console.print(table)
    if result.best is None:
        err.print("[yellow]No checkpoint has a score[/yellow] (every row was None).")
    else:
        console.print(Text(f"Best: {result.best.name} ({result.best.file}, score "
                           f"{_fmt(result.best.value(result.aggregate))})"))
    if plot is not None:
        console.print(Text(f"Plot: {plot}"))


@app.command()
def train(
    config: Path = typer.Argument(..., help="Stage or pipeline config (YAML/TOML/JSON)."),
    overrides: Optional[list[str]] = typer.Option(None, "--set", help="Override a key: --set trainer.max_steps=2 "
                                                  "(dotted key, YAML value; repeatable)."),
) -> None:
    """Train one stage (sft, rm, dpo, grpo) or a pipeline of stages from a config."""
    from .train import run
    from .train.pipeline import finish_distributed, is_main_process

    results = run(config, overrides)
    finish_distributed()
    if not is_main_process():
        return  # under accelerate every rank gets here: one table is enough
    table = Table(title=f"{config}: {len(results)} stage(s)", title_justify="left")
    for col in ("stage", "name", "steps", "train loss", "time (s)", "model"):
        table.add_column(col, justify="right" if col in ("steps", "train loss", "time (s)") else "left",
                         overflow="fold")
    for r in results:
        table.add_row(r.stage, Text(r.name), str(r.steps), _fmt(r.train_loss), f"{r.runtime_s:.1f}", Text(r.model))
    console.print(table)


@app.command()
def demo(
    steps: Optional[int] = typer.Option(None, "--steps", help="GRPO steps (default 300)."),
    output: Path = typer.Option(Path("rewardkit-demo"), "--output", "-o", help="Folder for data, models, plot."),
    quick: bool = typer.Option(False, "--quick", help="A few steps of each stage (checks the plumbing, ~30 s)."),
) -> None:
    """Offline CPU demo: tiny model, SFT, GRPO with a composed reward, best-checkpoint selection."""
    from .demo import run

    run(output, steps=steps, quick=quick, say=lambda line: console.print(Text(line)))


def main() -> None:
    """Console-script entry point: rewardkit errors become one red line and exit code 2."""
    try:
        app(standalone_mode=False)
    except RewardkitError as exc:
        # The message is plain text: a regex like "[0-9]" in it must not be read as rich markup.
        err.print(Text.assemble(("Error: ", "red"), str(exc)), highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    except typer.Abort:
        raise SystemExit(1) from None
    except Exception as exc:  # click usage errors arrive here with standalone_mode=False
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise
