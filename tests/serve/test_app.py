"""`rewardkit serve` as a real process on 127.0.0.1: the two protocols, error shapes, the token, SIGTERM."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from rewardkit import compose
from tests.conftest import TESTS, rewardkit_serve, run_cli

SLOW = TESTS / "serve" / "slow_rewards.py"
SPEC = {
    "rewards": {
        "em": {"use": "exact_match"},
        "r1": {"use": "rouge1"},
        "boom": {"use": f"{SLOW}:fails_on_boom"},
    },
    "combine": "max(em, r1) * boom",
}
TOKEN = "s3cret-token-for-tests"
TIMEOUT = 60  # the first request warms the scorer up on a busy machine


def post(url: str, **kwargs) -> httpx.Response:
    return httpx.post(url, timeout=kwargs.pop("timeout", TIMEOUT), **kwargs)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "spec.json"
    path.write_text(json.dumps(SPEC))
    return path


@pytest.fixture(scope="module")
def served(spec_file: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("serve_log") / "server.log"
    with rewardkit_serve(spec_file, "--max-rows", "50", "--max-body-mb", "0.05", log=log) as server:
        yield server


@pytest.fixture(scope="module")
def guarded(spec_file: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("serve_token") / "server.log"
    with rewardkit_serve(spec_file, "--token-env", "RK_TEST_TOKEN", log=log, env={"RK_TEST_TOKEN": TOKEN}) as server:
        yield server


def test_score_rows_equal_local_composed(served):
    completions = ["the cat sat", [{"role": "assistant", "content": "a dog"}], "x", "완전히 같은 문장"]
    answers = ["the cat sat on the mat", "a dog", None, ["완전히 같은 문장", "other"]]
    answer = post(f"{served.url}/score", json={"completions": completions, "columns": {"answer": answers}})
    assert answer.status_code == 200
    body = answer.json()
    local = compose(SPEC)
    parts = local.score_components(completions=completions, answer=answers)
    assert body["combine"] == "max(em, r1) * boom"
    assert [row["score"] for row in body["rows"]] == local(completions=completions, answer=answers)
    for alias, values in parts.items():
        assert [row["components"][alias] for row in body["rows"]] == values
    assert body["rows"][2]["none"] == {"em": "no reference", "r1": "no reference"}
    assert body["rows"][0]["none"] == {}


def test_get_reward_speaks_openrlhf(served):
    prompts = ["Q: capital of France?\nA: ", "Q: 2+2?\nA: "]
    body = {"query": [p + r for p, r in zip(prompts, ["Paris", "5"])], "prompts": prompts, "labels": ["Paris", "4"]}
    answer = post(f"{served.url}/get_reward", json=body).json()
    local = compose(SPEC)(prompts=prompts, completions=["Paris", "5"], answer=["Paris", "4"])
    assert answer["rewards"] == answer["scores"] == local == [1.0, 0.0]
    assert set(answer["extra_logs"]) == {"em", "r1", "boom"}
    # OpenRLHF sends an empty share to the other URLs when it has fewer rows than servers
    empty = post(f"{served.url}/get_reward", json={"query": [], "prompts": [], "labels": []}).json()
    assert empty == {"rewards": [], "scores": [], "extra_logs": {"em": [], "r1": [], "boom": []}}


def test_health(served):
    body = httpx.get(f"{served.url}/health", timeout=TIMEOUT).json()
    assert body["status"] == "ok" and body["components"] == ["em", "r1", "boom"]
    assert body["batching"] == {
        "wait_ms": 10.0,
        "max_rows": 256,
    }  # the defaults (tests/train/test_grpo_remote.py sets both)


@pytest.mark.parametrize(
    "flag, value, says",
    [
        ("--batch-wait-ms", "0", "greater than or equal to 0.1"),
        ("--batch-wait-ms", "inf", "less than or equal to 10000"),
        ("--batch-wait-ms", "nan", "less than or equal to 10000"),
        ("--max-batch-rows", "0", "greater than or equal to 1"),
        ("--max-batch-rows", "10000001", "less than or equal to 1000000"),
    ],
)
def test_batching_flags_out_of_bounds_are_one_line(spec_file, flag, value, says):
    result = run_cli("serve", spec_file, "--port", "0", flag, value, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert flag in result.stderr and says in result.stderr and "Traceback" not in result.stderr


BAD_REQUESTS = [
    # (id, route, raw body or JSON, status, field)
    ("not-json", "/score", b"{oops", 400, "body"),
    ("nan", "/score", b'{"completions": ["a"], "columns": {"answer": [NaN]}}', 400, "body"),
    ("not-an-object", "/score", [1, 2], 400, "body"),
    ("unknown-field", "/score", {"completions": ["a"], "completion": ["a"]}, 400, "completion"),
    ("no-completions", "/score", {"columns": {"answer": ["a"]}}, 400, "completions"),
    ("completions-string", "/score", {"completions": "a"}, 400, "completions"),
    (
        "completion-number",
        "/score",
        {"completions": ["a", 3], "columns": {"answer": ["a", "b"]}},
        422,
        "completions[1]",
    ),
    ("bad-message", "/score", {"completions": [[{"role": "assistant"}]]}, 422, "completions[0]"),
    ("short-column", "/score", {"completions": ["a", "b"], "columns": {"answer": ["a"]}}, 422, "answer"),
    ("no-reference-column", "/score", {"completions": ["a"], "columns": {"gold": ["a"]}}, 422, "columns.answer"),
    ("bad-gold", "/score", {"completions": ["a"], "columns": {"answer": [{"x": 1}]}}, 422, "columns.answer[0]"),
    ("reserved-column", "/score", {"completions": ["a"], "columns": {"prompts": ["a"]}}, 400, "columns.prompts"),
    ("short-prompts", "/score", {"completions": ["a"], "prompts": [], "columns": {"answer": ["a"]}}, 422, "prompts"),
    ("too-many-rows", "/score", {"completions": ["a"] * 51}, 413, "completions"),
    ("too-big", "/score", {"completions": ["a" * 60_000]}, 413, "body"),
    ("reward-raises", "/score", {"completions": ["boom"], "columns": {"answer": ["a"]}}, 422, "rows"),
    ("query-not-prompt", "/get_reward", {"query": ["Q: b A"], "prompts": ["Q: a"], "labels": ["x"]}, 422, "query[0]"),
    ("query-number", "/get_reward", {"query": [1], "prompts": ["Q"], "labels": ["x"]}, 422, "query[0]"),
    ("no-prompts", "/get_reward", {"query": ["Q a"], "labels": ["x"]}, 400, "prompts"),
    ("no-labels", "/get_reward", {"query": ["Q a"], "prompts": ["Q"]}, 400, "labels"),
    ("short-labels", "/get_reward", {"query": ["Q a"], "prompts": ["Q"], "labels": []}, 422, "labels"),
    ("bad-label", "/get_reward", {"query": ["Q a"], "prompts": ["Q"], "labels": [[{"a": 1}]]}, 422, "labels[0]"),
]


@pytest.mark.parametrize("route,body,status,field", [r[1:] for r in BAD_REQUESTS], ids=[r[0] for r in BAD_REQUESTS])
def test_bad_request_is_one_json_error(served, route, body, status, field):
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    answer = post(f"{served.url}{route}", **kwargs)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"field", "message"} and field in error["field"]
    assert "Traceback" not in answer.text


@pytest.mark.parametrize("method,path,status", [("GET", "/nowhere", 404), ("GET", "/score", 405)])
def test_unknown_route_is_json(served, method, path, status):
    answer = httpx.request(method, f"{served.url}{path}", timeout=TIMEOUT)
    assert answer.status_code == status and answer.json()["error"]["field"] == "path"


def test_token_required_and_never_logged(guarded):
    body = {"completions": ["a"], "columns": {"answer": ["a"]}}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        answer = post(f"{guarded.url}/score", json=body, headers=headers)
        assert answer.status_code == 401 and answer.json()["error"]["field"] == "Authorization"
        assert answer.headers["www-authenticate"] == "Bearer"
    ok = post(f"{guarded.url}/score", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["rows"][0]["score"] == 1.0
    assert (
        httpx.get(f"{guarded.url}/health", timeout=TIMEOUT).status_code == 200
    )  # health tells nothing: open, for load balancers
    assert TOKEN not in guarded.output()


def test_token_env_unset_is_a_usage_error(spec_file):
    result = run_cli("serve", spec_file, "--port", "0", "--token-env", "RK_NOT_SET_ANYWHERE", timeout=60)
    assert result.returncode == 2
    assert "RK_NOT_SET_ANYWHERE" in result.stderr and "Traceback" not in result.stderr


def test_sigterm_finishes_requests_in_flight_then_exits_0(tmp_path):
    spec = tmp_path / "slow.json"
    spec.write_text(json.dumps({"rewards": {"slow": {"use": f"{SLOW}:slow_len"}}}))
    with rewardkit_serve(spec, log=tmp_path / "log", env={"SLOW_REWARD_SECONDS": "2"}) as server:
        answers: list = []
        request = threading.Thread(
            target=lambda: answers.append(httpx.post(f"{server.url}/score", json={"completions": ["abcd"]}, timeout=30))
        )
        request.start()
        time.sleep(0.7)  # the request is being scored (2 s)
        started = time.monotonic()
        code = server.stop(signal.SIGTERM)
        request.join()
        assert code == 0, server.output()
        assert answers[0].status_code == 200 and answers[0].json()["rows"][0]["score"] == 0.04
        assert time.monotonic() - started >= 0.5  # it waited for the request rather than dying at once
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/health", timeout=2)


def test_event_loop_answers_while_scoring(tmp_path):
    spec = tmp_path / "slow.json"
    spec.write_text(json.dumps({"rewards": {"slow": {"use": f"{SLOW}:slow_len"}}}))
    with rewardkit_serve(spec, log=tmp_path / "log", env={"SLOW_REWARD_SECONDS": "3"}) as server:
        request = threading.Thread(
            target=lambda: httpx.post(f"{server.url}/score", json={"completions": ["a"]}, timeout=30)
        )
        request.start()
        time.sleep(0.5)
        started = time.monotonic()
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
        assert time.monotonic() - started < 1.0  # not queued behind the 3 s of scoring
        request.join()


def test_port_in_use_is_one_line(spec_file):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", spec_file, "--port", port, timeout=60)
    assert result.returncode == 2 and f"--port {port}: cannot listen there" in result.stderr
    assert "Traceback" not in result.stderr
