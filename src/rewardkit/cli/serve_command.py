"""`rewardkit serve SPEC`: a compose spec over HTTP (the server itself is rewardkit.serve)."""

from __future__ import annotations

import os
from typing import Optional

import typer

from rewardkit.core.errors import ConfigError

# The micro-batcher's settings (rewardkit.serve.batching): the defaults, and bounds that keep a typo from stalling
# every request (a wait of minutes) or holding unbounded rows in one forward pass.
DEFAULT_WAIT_MS, MIN_WAIT_MS, MAX_WAIT_MS = 10.0, 0.1, 10_000.0
DEFAULT_BATCH_ROWS, MAX_BATCH_ROWS = 256, 1_000_000


def read_token(variable: str | None) -> str | None:
    """The bearer token from the environment variable named by --token-env (never from the command line, where
    `ps` shows it)."""
    if variable is None:
        return None
    token = os.environ.get(variable, "").strip()
    if not token:
        raise ConfigError(
            f"--token-env {variable}: the environment variable {variable} is not set or empty.",
            hint=f"export {variable}=<a long random token>, or leave --token-env out.",
        )
    return token


def serve_cmd(
    spec: str = typer.Argument(..., metavar="SPEC", help="Compose spec: YAML/TOML/JSON file or preset name."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: a free one, printed at start)."),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=256,
        help="Worker processes for each sync CPU-bound component (its workers: N); a model stays loaded once.",
    ),
    overrides: Optional[list[str]] = typer.Option(
        None, "--set", help="Change a reward parameter of the spec: --set bertscore.model_type=./my-bert (repeatable)."
    ),
    token_env: Optional[str] = typer.Option(
        None, "--token-env", help="Environment variable holding a bearer token that requests must send."
    ),
    max_rows: int = typer.Option(4096, "--max-rows", min=1, help="Rows one request may carry."),
    max_body_mb: float = typer.Option(
        32.0, "--max-body-mb", min=0.001, max=65536, help="Megabytes one request body may carry."
    ),
    batch_wait_ms: float = typer.Option(
        DEFAULT_WAIT_MS,
        "--batch-wait-ms",
        min=MIN_WAIT_MS,
        max=MAX_WAIT_MS,
        help="Milliseconds a request to a model component waits for others to share its forward pass.",
    ),
    max_batch_rows: int = typer.Option(
        DEFAULT_BATCH_ROWS,
        "--max-batch-rows",
        min=1,
        max=MAX_BATCH_ROWS,
        help="Rows of one merged model call (a larger request runs alone; 1: never merge).",
    ),
) -> None:
    """Serve a compose spec over HTTP: POST /score (rewardkit), POST /get_reward (OpenRLHF), GET /health."""
    from rewardkit.serve.app import ServeOptions, run
    from rewardkit.serve.protocol import Limits
    from rewardkit.serve.scorer import load_scorer

    token = read_token(token_env)
    scorer = load_scorer(spec, overrides, workers=workers, max_wait=batch_wait_ms / 1000, max_batch_rows=max_batch_rows)
    limits = Limits(max_rows=max_rows, max_body_bytes=int(max_body_mb * 1024 * 1024))
    run(
        scorer, ServeOptions(host=host, port=port, token=token, limits=limits), say=lambda line: print(line, flush=True)
    )
