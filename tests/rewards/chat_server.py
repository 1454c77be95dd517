"""A small chat-completions server on 127.0.0.1 (port 0) for the judge's tests and benchmarks/bench_judge.py.

It speaks the part of the OpenAI protocol the judge uses (POST /v1/chat/completions, `usage`, `logprobs`) and can
misbehave on purpose: a fixed latency, 429 with Retry-After, 500, a reply that never comes, malformed JSON. It
records every request body and the most requests it ever had in flight at once (the concurrency limit, observed on
the server side). Replies come from `reply(body) -> str` (default: "Score: 7"), refusals from `refuse`;
GET /v1/models lists `models` (401 without the `api_key` when one is set), another `/models` path is a 404, any
other GET returns {"requests", "max_in_flight"}.

`python -m tests.rewards.chat_server --latency 0.1` serves in a process of its own (its URL on the first line of
stdout) until stdin closes: a client measured against it does not share the server's interpreter lock.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    """What the server does; tests change it between calls."""

    reply: Callable[[dict], str] = lambda body: "Score: 7"
    latency: float = 0.0  # seconds before each answer
    # Failures served first, one per request, in order: ("429", seconds) | ("500", None) | ("hang", None) |
    # ("malformed", None). Requests after the list is used up are answered normally.
    failures: list[tuple[str, Any]] = field(default_factory=list)
    top_logprobs: Callable[[dict, str], list[tuple[str, float]]] | None = None  # (token, logprob) of the 1st token
    fail_when: Callable[[dict], tuple[str, Any] | None] | None = None  # a failure chosen by the request itself
    models: list[str] = field(default_factory=list)  # what GET /v1/models lists (empty: lists none)
    api_key: str | None = None  # set: GET /v1/models answers 401 without `Authorization: Bearer <api_key>`
    refuse: Callable[[dict], str | None] | None = None  # a refusal (message.refusal, no content) for this request


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 drops concurrent connects (1 s SYN retry each)
    daemon_threads = True


class ChatServer:
    """The server, its behaviour and what it saw."""

    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.bodies: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.model_lists: list[str | None] = []  # the Authorization header of each GET /v1/models
        self.lock = threading.Lock()
        self.stop = threading.Event()  # releases hung handlers at shutdown
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # what the server saw, for a client in another process (the benchmark)
                if self.path == "/v1/models":  # the judge's preflight
                    with server.lock:
                        server.model_lists.append(self.headers.get("Authorization"))
                    key = server.behaviour.api_key
                    if key is not None and self.headers.get("Authorization") != f"Bearer {key}":
                        self._send(401, {"error": {"message": "Incorrect API key provided"}})
                        return
                    listed = [
                        {"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in server.behaviour.models
                    ]
                    self._send(200, {"object": "list", "data": listed})
                    return
                if self.path.endswith("/models"):  # a base_url with a wrong path
                    self._send(404, {"error": {"message": "Not Found"}})
                    return
                with server.lock:
                    seen = {"requests": len(server.bodies), "max_in_flight": server.max_in_flight}
                self._send(200, seen)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server.lock:
                    server.bodies.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    failure = server.behaviour.failures.pop(0) if server.behaviour.failures else None
                    if failure is None and server.behaviour.fail_when is not None:
                        failure = server.behaviour.fail_when(body)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer(body, failure)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, body: dict, failure: tuple[str, Any] | None) -> None:
                if server.behaviour.latency:
                    time.sleep(server.behaviour.latency)
                kind = failure[0] if failure else None
                if kind == "hang":
                    server.stop.wait(120)
                    return
                if kind == "429":
                    self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": str(failure[1])})
                    return
                if kind == "500":
                    self._send(500, {"error": {"message": "boom"}})
                    return
                if kind == "malformed":
                    self._send_raw(200, b'{"id": "x", "choices": [{"message": ')
                    return
                text = server.behaviour.reply(body)
                refusal = server.behaviour.refuse(body) if server.behaviour.refuse is not None else None
                choice: dict[str, Any] = {
                    "index": 0,
                    "message": {"role": "assistant", "content": None if refusal else text, "refusal": refusal},
                    "finish_reason": "stop",
                }
                if body.get("logprobs") and server.behaviour.top_logprobs is not None:
                    top = server.behaviour.top_logprobs(body, text)
                    choice["logprobs"] = {
                        "content": [
                            {
                                "token": top[0][0],
                                "logprob": top[0][1],
                                "bytes": None,
                                "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top],
                            }
                        ]
                    }
                prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{len(server.bodies)}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "judge"),
                        "choices": [choice],
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": 3,
                            "total_tokens": prompt_tokens + 3,
                        },
                    },
                )

            def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                self._send_raw(status, json.dumps(payload).encode(), headers)

            def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                    pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        # a short poll: shutdown() waits up to one poll interval (0.5 s by default, paid by every test using one)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def requests(self) -> int:
        """Requests received so far."""
        with self.lock:
            return len(self.bodies)

    def reset(self) -> None:
        """Forget what was seen (the behaviour stays)."""
        with self.lock:
            self.bodies.clear()
            self.headers.clear()
            self.max_in_flight = 0


@contextmanager
def chat_server() -> Iterator[ChatServer]:
    """A running ChatServer, stopped (hung handlers released) on exit."""
    server = ChatServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.httpd.shutdown()
        server.httpd.server_close()


if __name__ == "__main__":
    import argparse
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    options = parser.parse_args()
    with chat_server() as running:
        running.behaviour.latency = options.latency
        print(running.url, flush=True)
        sys.stdin.read()  # until the parent closes the pipe
