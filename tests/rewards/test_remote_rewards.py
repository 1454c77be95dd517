"""The `remote` reward against real `rewardkit serve` processes (and, for 429 / 503, a small real server)."""

from __future__ import annotations

import json
import logging
import pickle
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rewardkit import ConfigError, DataError, RewardError, compose, get_reward
from tests.conftest import TESTS, rewardkit_serve

SLOW = TESTS / "serve" / "slow_rewards.py"
SPEC = {
    "rewards": {
        "em": {"use": "exact_match"},
        "r1": {"use": "rouge1"},
    },
    "combine": "max(em, r1) * 0.7 + r1 / 3",
}
COMPLETIONS = [
    "the cat sat on the mat",
    [{"role": "assistant", "content": "a dog barked"}],
    "",
    "정답은 42입니다",
    "x" * 300,
] * 9
ANSWERS = ["the cat sat", "a dog barked loudly", "x", ["정답은 42입니다", "42"], None] * 9


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("remote")
    (folder / "spec.json").write_text(json.dumps(SPEC))
    with rewardkit_serve(folder / "spec.json", log=folder / "server.log") as server:
        yield server


def closed_port_url() -> str:
    """A URL nothing listens on (a port the OS just handed out and took back)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_remote_equals_local_bit_for_bit(served):
    remote = get_reward("remote", url=served.url, max_rows=7, timeout=60)  # 45 rows: 7 requests
    local = compose(SPEC)
    got = remote(completions=COMPLETIONS, answer=ANSWERS)
    assert got == local(completions=COMPLETIONS, answer=ANSWERS)
    assert got[4] is None and remote.none_reasons == {"remote: em: no reference, r1: no reference": 9}


def test_remote_in_a_composed_spec_and_8_threads_at_once(served):
    composed = compose({"rewards": {"far": {"use": "remote", "url": [served.url], "timeout": 60}}})
    expected = compose(SPEC)(completions=COMPLETIONS, answer=ANSWERS)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: composed(completions=COMPLETIONS, answer=ANSWERS), range(8)))
    assert all(r == expected for r in results)


def test_remote_pickles_without_its_connections(served):
    remote = get_reward("remote", url=[served.url], timeout=60)
    remote(completions=["a"], answer=["a"])
    copy = pickle.loads(pickle.dumps(remote))
    assert copy(completions=["a"], answer=["b"]) == compose(SPEC)(completions=["a"], answer=["b"])


def test_a_server_killed_mid_batch_hands_its_share_to_the_other(tmp_path, caplog):
    spec = {"rewards": {"slow": {"use": f"{SLOW}:slow_len"}, "em": {"use": "exact_match"}}, "combine": "slow + em"}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {"SLOW_REWARD_SECONDS": "1.5"}
    rows = [f"completion {i}" for i in range(24)]
    golds = [f"completion {i}" if i % 3 else "no" for i in range(24)]
    with (
        rewardkit_serve(tmp_path / "spec.json", log=tmp_path / "a.log", env=env) as a,
        rewardkit_serve(tmp_path / "spec.json", log=tmp_path / "b.log", env=env) as b,
    ):
        remote = get_reward("remote", url=[a.url, b.url], max_rows=4, retries=2, backoff=0.05, timeout=60)
        killer = threading.Timer(0.7, a.process.kill)  # while a scores its first requests (1.5 s each)
        killer.start()
        with caplog.at_level(logging.WARNING, logger="rewardkit.remote"):
            got = remote(completions=rows, answer=golds)
        killer.join()
        assert a.process.poll() is not None  # a really died mid-batch
    assert got == [len(r) / 100 + (1.0 if i % 3 else 0.0) for i, r in enumerate(rows)]
    failovers = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failovers) == 1 and a.url in failovers[0] and b.url in failovers[0]


@pytest.mark.parametrize("policy,expected", [("none", [None, None]), ("zero", [0.0, 0.0])], ids=["none", "zero"])
def test_no_server_left_applies_on_error(policy, expected):
    remote = get_reward("remote", url=[closed_port_url()], retries=1, backoff=0.01, on_error=policy)
    with pytest.warns(RuntimeWarning, match="no server could score"):
        assert remote(completions=["a", "b"], answer=["a", "b"]) == expected
    assert remote.none_reasons == ({"error": 2} if policy == "none" else {})


def test_no_server_left_raises_naming_the_url_and_cause():
    url = closed_port_url()
    remote = get_reward("remote", url=[url], retries=2, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(RewardError, match=f"{url}: ConnectError.*after 3 tries"):
        remote(completions=["a"] * 50, answer=["a"] * 50)
    assert time.monotonic() - started < 10  # the batch failed once, not once per row


class FlakyServer:
    """A real HTTP server (Starlette on uvicorn, in a thread) answering each POST /score with the next status of
    `statuses`, then 200 with the rows scored as len(completion)."""

    def __init__(self, statuses: list[int], headers: dict | None = None) -> None:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        self.statuses, self.hits = list(statuses), []

        async def score(request: Request) -> JSONResponse:
            body = await request.json()
            self.hits.append(time.monotonic())
            if self.statuses:
                status = self.statuses.pop(0)
                error = {"error": {"field": "columns.answer", "message": "refused"}}
                return JSONResponse(error, status_code=status, headers=headers)
            return JSONResponse({"rows": [{"score": float(len(c))} for c in body["completions"]]})

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            Starlette(routes=[Route("/score", score, methods=["POST"])]), port=port, log_level="error"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> FlakyServer:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()


def test_429_waits_what_retry_after_says():
    with FlakyServer([429], headers={"Retry-After": "1"}) as server:
        remote = get_reward("remote", url=[server.url], retries=2, backoff=0.01)
        assert remote(completions=["abc"]) == [3.0]
        assert len(server.hits) == 2 and server.hits[1] - server.hits[0] >= 0.95


def test_5xx_is_retried_with_backoff():
    with FlakyServer([503, 500]) as server:
        remote = get_reward("remote", url=[server.url], retries=2, backoff=0.2)
        assert remote(completions=["ab"]) == [2.0]
        assert len(server.hits) == 3 and server.hits[2] - server.hits[1] >= 0.35  # 0.2 s, then 0.4 s


def test_4xx_is_not_retried_and_names_the_field():
    with FlakyServer([422]) as server:
        remote = get_reward("remote", url=[server.url], retries=3, backoff=0.01)
        with pytest.raises(DataError, match=r"422 \(columns.answer\): refused"):
            remote(completions=["ab"])
        assert len(server.hits) == 1


def test_token_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "spec.json").write_text(json.dumps({"rewards": {"em": {"use": "exact_match"}}}))
    with rewardkit_serve(
        tmp_path / "spec.json", "--token-env", "RK_T", log=tmp_path / "log", env={"RK_T": "tok-123"}
    ) as server:
        monkeypatch.setenv("RK_REMOTE_TOKEN", "tok-123")
        remote = get_reward("remote", url=[server.url], token_env="RK_REMOTE_TOKEN", timeout=60)
        assert remote(completions=["a", "b"], answer=["a", "a"]) == [1.0, 0.0]
        assert "tok-123" not in repr(remote)
        monkeypatch.setenv("RK_REMOTE_TOKEN", "wrong")
        with pytest.raises(ConfigError, match="401"):
            remote(completions=["a"], answer=["a"])
    monkeypatch.delenv("RK_REMOTE_TOKEN")
    with pytest.raises(ConfigError, match="RK_REMOTE_TOKEN is not set"):
        get_reward("remote", url=["http://127.0.0.1:1"], token_env="RK_REMOTE_TOKEN")


BAD_PARAMS = [
    ("no-url", {"url": []}, "url"),
    ("ftp", {"url": "ftp://host:21"}, "server base URL"),
    ("query", {"url": "http://host:1/?a=b"}, "server base URL"),
    ("twice", {"url": ["http://a:1", "http://a:1/"]}, "twice"),
    ("bad-port", {"url": "http://a:port"}, "bad port"),
    ("negative-retries", {"url": "http://a:1", "retries": -1}, "retries"),
    ("view", {"url": "http://a:1", "completion_view": "boxed"}, "completion_view"),
    ("reference", {"url": "http://a:1", "reference": "answer"}, "reference"),
]


@pytest.mark.parametrize("params,match", [r[1:] for r in BAD_PARAMS], ids=[r[0] for r in BAD_PARAMS])
def test_bad_params(params, match):
    with pytest.raises(ConfigError, match=match):
        get_reward("remote", **params)


def test_a_column_json_cannot_carry_is_named(served):
    remote = get_reward("remote", url=[served.url])
    with pytest.raises(DataError, match="column 'answer' cannot be sent as JSON"):
        remote(completions=["a"], answer=[{1, 2}])


def test_spec_file_use_remote(served, tmp_path: Path):
    (tmp_path / "client.yaml").write_text(f"rewards:\n  far: {{use: remote, url: [{served.url}], timeout: 60}}\n")
    assert compose(tmp_path / "client.yaml")(completions=["a"], answer=["a"]) == compose(SPEC)(
        completions=["a"], answer=["a"]
    )


def test_an_answer_that_is_not_rewardkits_is_an_error_not_a_score():
    with FlakyServer([200]) as server:  # 200 with an error body: no rows
        remote = get_reward("remote", url=[server.url], retries=0)
        with pytest.raises(RewardError, match="does not hold 1 scored rows"):
            remote(completions=["ab"])
