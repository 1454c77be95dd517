"""The `rewardkit` command: parses arguments and prints; the work happens in the library modules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from rewardkit.cli.console import ERR, OUT, Group, print_table
from rewardkit.cli.console import run as run_app
from rewardkit.cli.judge_cache_command import judge_cache_app
from rewardkit.cli.reports import fmt as _fmt
from rewardkit.cli.reports import print_train_results
from rewardkit.cli.select_command import select_cmd
from rewardkit.cli.serve_command import serve_cmd
from rewardkit.cli.tiny_command import DEFAULT_INIT_RANGE
from rewardkit.generation import DEFAULT_BATCH_SIZE

# rich_markup_mode=None: plain help (flags shown as `--json`, not `--json <bool>`); Group: see rewardkit.cli.console.
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Rewards, callbacks and runs for TRL.",
    cls=Group,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
console = OUT  # the command's consoles (rewardkit.cli.console), shared with the commands in their own modules
err = ERR


@app.callback()
def _options(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", envvar="REWARDKIT_VERBOSE", help="Also show third-party warnings and log messages."
    ),
) -> None:
    if not verbose:
        from rewardkit.cli.console import quiet_third_party

        quiet_third_party()


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List rewards, callbacks, views, tokenizers, presets and dataset generators with their source."""
    from rewardkit.api import catalog
    from rewardkit.core.registry import KINDS

    data = catalog(schemas=as_json)  # the table shows no parameters: skip building their schemas
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for kind in KINDS:
        table = Table(title=kind, title_justify="left")
        for col in ("name", "source", "summary"):
            table.add_column(col)
        for entry in data[kind]:
            # Summaries are plugin text: show it literally ("[a-z0-9]" is not rich markup).
            table.add_row(Text(entry["name"]), Text(f"{entry['source']} {entry['version']}"), Text(entry["summary"]))
        print_table(console, table)
    for failed in data["failed_plugins"]:
        # Plugin error text is literal: "[a-z]" in it is not rich markup.
        err.print(Text.assemble(("failed plugin", "red"), f" {failed['name']} {failed['version']}: {failed['error']}"))
    for kind, names in data["conflicts"].items():
        for name, qualified in names.items():
            err.print(
                Text.assemble(("conflict", "yellow"), f" {kind[:-1]} {name!r}: use one of {', '.join(qualified)}")
            )


@app.command()
def score(
    spec: str = typer.Argument(..., metavar="SPEC", help="Compose spec: YAML/TOML/JSON file or preset name."),
    input: Path = typer.Option(..., "--input", "-i", help="JSONL rows with completion, prompt and references."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write rows with scores as JSONL."),
    completion_key: str = typer.Option("completion", help="Field holding the completion."),
    overrides: Optional[list[str]] = typer.Option(
        None, "--set", help="Change a reward parameter of the spec: --set bertscore.model_type=./my-bert (repeatable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Score completions with a composed reward spec."""
    from rewardkit.composition.scoring import score_rows, views_coverage
    from rewardkit.core.fileio import atomic_write_jsonl, check_output, dumps_strict, read_jsonl
    from rewardkit.models import compose_checked

    composed = compose_checked(spec, overrides)
    if output is not None:
        check_output(output)  # refused before scoring, not after
    rows = read_jsonl(input)
    scores = score_rows(composed, rows, completion_key=completion_key)
    summary = scores.summary()
    if output is not None:  # an input NaN is written as null (strict JSON)
        atomic_write_jsonl(
            output,
            [
                dict(row, scores={a: v[i] for a, v in scores.components.items()}, combined=scores.combined[i])
                for i, row in enumerate(rows)
            ],
        )
    if as_json:
        coverage = views_coverage(scores.coverage)
        summary_json = {"summary": summary, "corpus": scores.corpus(composed), "coverage": coverage}
        typer.echo(dumps_strict({**summary_json, "usage": scores.usage}, indent=2))
        return
    table = Table(title=f"{len(rows)} rows scored with {composed.expression}")
    for col in ("component", "mean", "std", "None"):
        table.add_column(col, justify="right" if col != "component" else "left")
    for s in summary:
        table.add_row(s["name"], _fmt(s["mean"]), _fmt(s["std"]), str(s["none"]))
    print_table(console, table)
    for line in scores.none_lines():  # a reward that silently scores nothing must be seen
        console.print(Text(f"None rows: {line}"), soft_wrap=True)
    # Answers without a reason (which `missing: none` does not count); what a judge spent.
    for line in [*scores.coverage_lines(), *scores.usage_lines()]:
        console.print(Text(line), soft_wrap=True)
    # The same two numbers as --json: "combined" above is the mean of the row scores; the corpus score applies
    # the expression to the component means (what `rewardkit select --aggregate corpus` ranks by).
    console.print(
        Text(
            f"corpus score: {_fmt(scores.corpus(composed))} ({composed.expression} on the component "
            "means; 'combined' is the mean of the row scores)"
        ),
        soft_wrap=True,
    )


app.command("select")(select_cmd)  # rewardkit.cli.select_command


@app.command()
def train(
    config: Path = typer.Argument(..., metavar="CONFIG", help="Stage or pipeline config (YAML/TOML/JSON)."),
    overrides: Optional[list[str]] = typer.Option(
        None, "--set", help="Override a key: --set trainer.max_steps=2 (dotted key, YAML value; repeatable)."
    ),
    smoke: bool = typer.Option(
        False,
        "--smoke",
        help="Check the config end to end offline in about a minute: tiny "
        "local model, its first rows, 2 steps per stage; outputs in runs/smoke/.",
    ),
    checkpoint: Optional[Path] = typer.Argument(
        None,
        metavar="PATH",
        help="With --resume: the checkpoint-N folder to continue from (default: the latest complete one).",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue an interrupted run: finished stages are reused, "
        "the interrupted one continues from its latest complete checkpoint-N (or PATH: "
        "--resume PATH).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Delete the earlier run in the output folders and start over."
    ),
    accept_config_change: bool = typer.Option(
        False,
        "--accept-config-change",
        help="With --resume: continue although the config changed what is trained (model, data, rewards, ...).",
    ),
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="Output folder (the config's output_dir; with --smoke, instead of runs/smoke/<config>).",
    ),
) -> None:
    """Train one stage (sft, rm, dpo, grpo) or a pipeline of stages from a config."""
    from rewardkit.train import run
    from rewardkit.train.pipeline import finish_distributed, is_main_process

    if checkpoint is not None and not resume:
        raise typer.BadParameter(f"{checkpoint} is a checkpoint to resume from. Hint: --resume {checkpoint}.")
    say = lambda line: console.print(Text(line), soft_wrap=True)  # noqa: E731
    where = (str(checkpoint) if checkpoint is not None else "latest") if resume else None
    results = run(
        config,
        overrides,
        smoke=smoke,
        say=say,
        resume=where,
        overwrite=overwrite,
        output=output,
        accept_config_change=accept_config_change,
    )
    finish_distributed()
    if not is_main_process():
        return  # under accelerate every rank gets here: one table is enough
    print_train_results(console, config, results, say)


@app.command()
def demo(
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="GRPO steps (default 300)."),
    output: Path = typer.Option(Path("rewardkit-demo"), "--output", "-o", help="Folder for data, models, plot."),
    quick: bool = typer.Option(False, "--quick", help="A few steps of each stage (checks the plumbing, ~10 s)."),
) -> None:
    """Offline CPU demo: tiny model, SFT, GRPO with a composed reward, best-checkpoint selection."""
    from rewardkit.cli.demo import run

    run(output, steps=steps, quick=quick, say=lambda line: console.print(Text(line)))


@app.command()
def generate(
    model: Optional[str] = typer.Argument(None, help="Model folder or cached hub id (or use --from-run)."),
    input: Path = typer.Option(..., "--input", "-i", help="Rows to generate: .json list of objects or .jsonl."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file: .json (a list) or .jsonl, by suffix."),
    from_run: Optional[Path] = typer.Option(
        None,
        "--from-run",
        help="A `rewardkit train` run folder: its model, best adapter, column mapping and system prompt.",
    ),
    adapter: Optional[Path] = typer.Option(None, "--adapter", help="LoRA adapter folder (adapter_config.json)."),
    into: Optional[str] = typer.Option(
        None,
        "--into",
        help="Dotted key receiving the completion in a copy of each row, e.g. output.answer (default: completion).",
    ),
    into_overwrite: bool = typer.Option(
        False, "--into-overwrite", help="Allow --into to replace the row's id or the prompt's source field."
    ),
    prompt_column: str = typer.Option("prompt", "--prompt-column", help="Prompt key (after --column mapping)."),
    column: Optional[list[str]] = typer.Option(
        None, "--column", help="Map SRC=DST like dataset.columns, e.g. input.question=prompt (repeatable)."
    ),
    columns_json: Optional[str] = typer.Option(None, "--columns-json", help="The mapping as a JSON object or file."),
    chat: Optional[bool] = typer.Option(None, "--chat/--no-chat", help="Wrap string prompts as a user turn."),
    system_prompt: Optional[str] = typer.Option(None, "--system-prompt", help="System message (implies --chat)."),
    batch_size: int = typer.Option(DEFAULT_BATCH_SIZE, "--batch-size", help="Prompts per generate() call."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", help="Generation length limit."),
    no_share_prefix: bool = typer.Option(False, "--no-share-prefix", help="Do not reuse the shared prompt prefix."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    dtype: str = typer.Option("auto", "--dtype", help="auto | float32 | bfloat16 | float16"),
    chat_template: Optional[str] = typer.Option(
        None, "--chat-template", help="Chat template (a .jinja file or the template text) replacing the tokenizer's."
    ),
    fail_on_empty: bool = typer.Option(
        False,
        "--fail-on-empty",
        help="Exit 1 when a completion is empty or whitespace only (the file is still written).",
    ),
    engine: str = typer.Option("hf", "--engine", help="hf (transformers, the default) | vllm (needs vllm)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Generate completions (greedy) for every row of a file into a submission file."""
    from rewardkit.generation import generate_file, parse_columns

    mapping = parse_columns(column, columns_json) if column or columns_json else None
    result = generate_file(
        model,
        input,
        output,
        adapter=adapter,
        into=into,
        from_run=from_run,
        columns=mapping,
        prompt_column=prompt_column,
        chat=chat,
        system_prompt=system_prompt,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        share_prefix=not no_share_prefix,
        device=device,
        dtype=dtype,
        chat_template=chat_template,
        into_overwrite=into_overwrite,
        engine=engine,
    )
    if result.empty:  # stderr, also under --json: a submission of empty answers must not pass unnoticed
        err.print(
            Text(
                f"warning: {result.empty} of {result.rows} completions are empty or whitespace only "
                f"(see {result.output})"
            ),
            style="yellow",
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        chosen = f" + adapter {result.adapter}" if result.adapter else ""
        console.print(
            Text(
                f"Wrote {result.rows} rows to {result.output} ({result.model}{chosen}, {result.device} "
                f"{result.dtype}; load {result.load_seconds:.1f}s, generate {result.generate_seconds:.1f}s)"
            )
        )
    if fail_on_empty and result.empty:
        raise typer.Exit(1)


@app.command()
def tiny(
    directory: Path = typer.Argument(..., metavar="DIR", help="New folder for the model (Hugging Face layout)."),
    data: Optional[list[Path]] = typer.Option(
        None,
        "--from",
        help="Data files (.jsonl/.json/.txt/.csv) whose characters the tokenizer must cover (repeatable).",
    ),
    arch: str = typer.Option("qwen2", "--arch", help="qwen2 | llama (causal LM and classifier)."),
    hidden: int = typer.Option(64, "--hidden", min=8, max=4096, help="Hidden size."),
    layers: int = typer.Option(2, "--layers", min=1, max=48, help="Number of layers."),
    bert: bool = typer.Option(False, "--bert", help="A tiny BERT for bertscore (model_type: DIR, num_layers)."),
    classifier: bool = typer.Option(False, "--classifier", help="A tiny sequence classifier: a reward model."),
    bleurt: bool = typer.Option(False, "--bleurt", help="A tiny BLEURT-20-shaped checkpoint (bleurt.model: DIR)."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Random seed of the weights."),
    init_range: float = typer.Option(
        DEFAULT_INIT_RANGE,
        "--init-range",
        help="Std of the random weights (0.02: near-identical greedy answers for every row).",
    ),
) -> None:
    """Make a small random model that loads offline on CPU: a real run on your laptop, no hub, no GPU."""
    from rewardkit.cli.tiny_command import make

    made = make(
        directory,
        data or [],
        arch=arch,
        hidden=hidden,
        layers=layers,
        bert=bert,
        classifier=classifier,
        bleurt=bleurt,
        seed=seed,
        init_range=init_range,
    )
    console.print(Text(made.report()), soft_wrap=True)


app.add_typer(judge_cache_app, name="judge-cache")
app.command("serve")(serve_cmd)  # rewardkit.cli.serve_command
plugin_app = typer.Typer(cls=Group, no_args_is_help=True, rich_markup_mode=None, help="Write rewardkit plugins.")
app.add_typer(plugin_app, name="plugin")


@plugin_app.command("new")
def plugin_new(
    name: str = typer.Argument(..., metavar="NAME", help="Plugin name: lowercase letters, digits, - or _."),
    directory: Path = typer.Option(Path("."), "--dir", help="Folder in which rewardkit-NAME/ is created."),
    description: Optional[str] = typer.Option(None, "--description", help="One-line description."),
) -> None:
    """Start a plugin: rewardkit-NAME/ with the entry point, hooks, a reward, a view, tests and a README."""
    from rewardkit.cli.scaffold import new_plugin

    made = new_plugin(name, directory, description=description)
    console.print(
        Text(
            f"Created {made.root} ({made.dist}: reward {made.reward}, view {made.view}).\nNext: "
            f"cd {made.root} && pip install -e . && python -m pytest   # then: rewardkit list"
        )
    )


def main() -> None:
    """Console-script entry point: usage and input errors are one line and exit 2, Ctrl-C exits 130
    (exit codes: rewardkit.cli.console)."""
    run_app(app, console, err)
