"""`rewardkit judge-cache stats|clear [PATH]`: what the judge's reply cache holds and what it saved; empty it."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from rewardkit.cli.console import Group, OutputConsole, print_table

judge_cache_app = typer.Typer(
    cls=Group, no_args_is_help=True, rich_markup_mode=None, help="The judge reward's reply cache (SQLite)."
)
console = OutputConsole()

PATH_HELP = "The cache file (default: $REWARDKIT_CACHE/judge.sqlite, else ~/.cache/rewardkit/judge.sqlite)."


def _path(path: Optional[Path]) -> Path:
    from rewardkit.rewards.judge_cache import default_cache_path

    return path if path is not None else default_cache_path()


def _when(stamp: float | None) -> str:
    return "-" if stamp is None else datetime.datetime.fromtimestamp(stamp).isoformat(timespec="seconds")


@judge_cache_app.command("stats")
def stats(
    path: Optional[Path] = typer.Argument(None, metavar="[PATH]", help=PATH_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the numbers as JSON."),
) -> None:
    """Entries, size, and the hits, requests and tokens counted since the cache was created or cleared."""
    from rewardkit.core.fileio import dumps_strict
    from rewardkit.rewards.judge_cache import stats as cache_stats

    data = cache_stats(_path(path))
    if as_json:
        typer.echo(dumps_strict(data, indent=2))
        return
    table = Table(title=f"judge cache {data['path']}")
    table.add_column("", justify="left")
    table.add_column("", justify="right")
    served = data["hits"] + data["requests"]
    rows = [
        ("entries", str(data["entries"])),
        ("size", f"{data['bytes'] / 1e6:.2f} MB"),
        ("cache hits", f"{data['hits']}" + (f" ({data['hits'] / served:.0%} of rows)" if served else "")),
        ("requests sent", str(data["requests"])),
        ("prompt tokens", str(data["prompt_tokens"])),
        ("completion tokens", str(data["completion_tokens"])),
        ("oldest entry", _when(data["oldest"])),
        ("newest entry", _when(data["newest"])),
    ]
    rows += [(f"model {name}", f"{count} entries") for name, count in data["models"].items()]
    for row in rows:
        table.add_row(*row)
    print_table(console, table)


@judge_cache_app.command("clear")
def clear(path: Optional[Path] = typer.Argument(None, metavar="[PATH]", help=PATH_HELP)) -> None:
    """Remove every cached reply and reset the counts (the file stays, so running judges keep working)."""
    from rewardkit.rewards.judge_cache import clear as cache_clear

    target = _path(path)
    removed = cache_clear(target)
    console.print(Text(f"Removed {removed} cached replies from {target}."), soft_wrap=True)
