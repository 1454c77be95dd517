"""The ASGI application (Starlette) and the server loop (uvicorn) of `rewardkit serve`.

Starlette rather than FastAPI: rewardkit already validates with its own pydantic models and error types, so
FastAPI's request models would be a second validator with a second error shape; Starlette is the ASGI toolkit
FastAPI itself runs on, one dependency less. Scoring runs in worker threads (the event loop keeps answering
`/health` and accepting requests while a batch is scored); SIGTERM stops accepting, lets the requests in flight
finish, then the process exits 0.
"""

from __future__ import annotations

import hmac
import logging
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rewardkit.core.errors import ConfigError, RewardkitError
from rewardkit.serve.protocol import (
    Limits,
    RequestError,
    ScoreRequest,
    parse_json,
    reward_answer,
    reward_request,
    score_answer,
    score_request,
)
from rewardkit.serve.scorer import Scorer

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

log = logging.getLogger("rewardkit.serve")


@dataclass(frozen=True)
class ServeOptions:
    """How the server listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # the bearer token every scoring request must carry (read from --token-env)
    limits: Limits = Limits()


def _error(exc: RequestError) -> JSONResponse:
    from starlette.responses import JSONResponse

    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _authorized(request: Request, token: str | None) -> None:
    if token is None:
        return
    sent = request.headers.get("authorization", "")
    scheme, _, value = sent.partition(" ")
    # compare_digest: the time taken does not tell how much of a guessed token was right
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise RequestError(401, "Authorization", "a valid 'Authorization: Bearer <token>' header is required.")


async def _body(request: Request, limits: Limits) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise RequestError(413, "body", f"{declared} bytes is over this server's limit of {limits.max_body_bytes}.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise RequestError(413, "body", f"over this server's limit of {limits.max_body_bytes} bytes.")
        chunks.append(chunk)
    return parse_json(b"".join(chunks))


def _scoring_error(exc: RewardkitError) -> RequestError:
    """A reward refusing the rows (a missing column, a bad value, a reward failing under on_error: raise)."""
    return RequestError(422, exc.where.path or "rows", str(exc))


def build_app(scorer: Scorer, options: ServeOptions) -> Starlette:
    """The Starlette application: GET /health, POST /score, POST /get_reward."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    composed = scorer.composed

    async def health(request: Request) -> JSONResponse:
        batched = {a: {"calls": b.calls, "merged_requests": b.merged} for a, b in scorer.batchers.items()}
        return JSONResponse(
            {
                "status": "ok",
                "combine": composed.expression,
                "components": list(composed.components),
                "batched": batched,
                "batching": {"wait_ms": scorer.max_wait * 1000, "max_rows": scorer.max_batch_rows},
            }
        )

    def endpoint(
        parse: Callable[[Any, Limits, list[str]], ScoreRequest], answer: Callable[[Any], dict]
    ) -> Callable[[Request], Any]:
        async def handle(request: Request) -> JSONResponse:
            try:
                _authorized(request, options.token)
                rows = parse(await _body(request, options.limits), options.limits, scorer.reference_columns)
                try:
                    scored = await run_in_threadpool(scorer.score, rows)
                except RewardkitError as exc:
                    raise _scoring_error(exc) from None
                return JSONResponse(answer(scored))
            except RequestError as exc:
                return _error(exc)
            except Exception:  # a bug, not the request: logged here with its traceback, never sent to the client
                log.exception("scoring failed on %s", request.url.path)
                return _error(RequestError(500, "rows", "the server failed while scoring; see its log."))

        return handle

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 500)
        return _error(
            RequestError(status, "path", f"{request.method} {request.url.path}: {getattr(exc, 'detail', '')}.")
        )

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/score", endpoint(score_request, lambda s: score_answer(s, composed.expression)), methods=["POST"]),
            Route("/get_reward", endpoint(reward_request, reward_answer), methods=["POST"]),
        ],
        exception_handlers={HTTPException: http_error},
    )


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one, read back with getsockname)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(
            f"--host {host}: {exc.strerror or exc}.", hint="an address of this machine, e.g. 127.0.0.1."
        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"--host {host} --port {port}: cannot listen there: {exc.strerror or exc}.",
            hint="another port (--port 0 picks a free one), or an address of this machine.",
        ) from None
    sock.set_inheritable(True)
    return sock


def run(scorer: Scorer, options: ServeOptions, say: Callable[[str], None] = print) -> None:
    """Serve until SIGTERM or Ctrl-C: stop accepting, finish the requests in flight, return."""
    import uvicorn

    sock = listen(options.host, options.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(build_app(scorer, options), log_level="info", lifespan="off", timeout_keep_alive=30)
    server = uvicorn.Server(config)
    say(f"rewardkit serve: {scorer.composed.expression} on http://{shown}:{port} (POST /score, /get_reward)")
    # uvicorn drains on SIGTERM, then raises the signal again with the handler it found; an ignored SIGTERM
    # there makes the drained server exit 0 instead of dying of the signal it handled.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN) if main else None
    try:
        server.run(sockets=[sock])
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        sock.close()
        scorer.close()
