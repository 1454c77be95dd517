"""`judge`: requests, retries, limits, cache and accounting against a real chat-completions server on 127.0.0.1."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardkit import get_reward
from rewardkit.core.errors import ConfigError, DataError, RewardError
from rewardkit.rewards import judge_cache
from tests.conftest import ROOT
from tests.rewards.chat_server import ChatServer, chat_server

TEMPLATE = "Question: {prompt}\nAnswer: {completion}\nGold: {reference}\nRate 0-10, reply 'Score: N'."


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with chat_server() as s:
        yield s


def judge(server: ChatServer, tmp_path: Path, **params):
    defaults = dict(
        base_url=server.url,
        model="judge-model",
        user_template=TEMPLATE,
        reference="answer",
        score={"min": 0, "max": 10},
        cache_path=str(tmp_path / "judge.sqlite"),
        backoff=0.01,
    )
    return get_reward("judge", **{**defaults, **params})


def rows(n: int, tag: str = "") -> dict:
    return {
        "prompts": [f"What is {i}+{i}?" for i in range(n)],
        "completions": [f"{tag}It is {2 * i}." for i in range(n)],
        "answer": [str(2 * i) for i in range(n)],
    }


def test_scores_and_the_second_batch_comes_from_the_cache(server, tmp_path):
    server.behaviour.reply = lambda body: "Good work. Score: 8/10"
    j = judge(server, tmp_path)
    assert j(**rows(6)) == [0.8] * 6
    assert server.requests == 6
    assert j(**rows(6)) == [0.8] * 6
    assert server.requests == 6  # 0 requests the second time
    assert j.usage["requests"] == 6 and j.usage["cache_hits"] == 6
    assert j.usage["prompt_tokens"] > 0 and j.usage["completion_tokens"] == 18
    body = next(b for b in server.bodies if "0+0" in str(b))  # the requests arrive in any order
    assert body["model"] == "judge-model" and body["temperature"] == 0
    assert body["messages"] == [
        {"role": "user", "content": TEMPLATE.format(prompt="What is 0+0?", completion="It is 0.", reference="0")}
    ]
    stats = judge_cache.stats(tmp_path / "judge.sqlite")
    assert (stats["entries"], stats["hits"], stats["requests"]) == (6, 6, 6)


def test_cache_false_sends_again_and_identical_rows_are_sent_once(server, tmp_path):
    j = judge(server, tmp_path, cache=False)
    same = {"prompts": ["q"] * 4, "completions": ["a"] * 4, "answer": ["g"] * 4}
    assert j(**same) == [0.7] * 4
    assert server.requests == 1  # four identical requests share one
    j(**same)
    assert server.requests == 2
    assert not (tmp_path / "judge.sqlite").exists()


def test_cache_key_holds_model_sampling_and_parser(server, tmp_path):
    judge(server, tmp_path)(**rows(2))
    judge(server, tmp_path, temperature=0.5)(**rows(2))
    judge(server, tmp_path, model="other")(**rows(2))
    judge(server, tmp_path, score={"min": 1, "max": 9})(**rows(2))
    assert server.requests == 8
    judge(server, tmp_path, score={"min": 1, "max": 9})(**rows(2))
    assert server.requests == 8


@pytest.mark.parametrize(
    "completion",
    ["{reference}", "{{7*7}}", "{prompt} {0} {__class__} {", "${{reference}}", "{answer}"],
)
def test_values_reach_the_judge_literally(server, tmp_path, completion):
    j = judge(server, tmp_path, user_template="A: {completion} | G: {reference} | {{literal}}")
    j(prompts=["p"], completions=[completion], answer=["SECRET"])
    assert server.bodies[0]["messages"][0]["content"] == f"A: {completion} | G: SECRET | {{literal}}"


def test_template_errors_before_any_request(server, tmp_path):
    with pytest.raises(ConfigError, match=r"\{reference\} but no reference column"):
        judge(server, tmp_path, reference=None)
    j = judge(server, tmp_path, user_template="{completion} vs {rubric}")
    with pytest.raises(ConfigError, match=r"\{rubric\}.*neither prompt, completion, reference nor a dataset column"):
        j(**rows(3))
    assert server.requests == 0
    # the column, when present, fills the field
    j(**rows(1), rubric=["be kind"])
    assert server.bodies[0]["messages"][0]["content"] == "It is 0. vs be kind"


def test_system_template_and_chat_prompts(server, tmp_path):
    j = judge(
        server, tmp_path, system_template="You grade {answer}-style answers.", user_template="{prompt}|{completion}"
    )
    chat = [{"role": "system", "content": "sys"}, {"role": "user", "content": "2+2?"}]
    j(prompts=[chat], completions=[[{"role": "assistant", "content": "4"}]], answer=["4"])
    assert server.bodies[0]["messages"] == [
        {"role": "system", "content": "You grade 4-style answers."},
        {"role": "user", "content": "2+2?|4"},
    ]


def test_unparsable_reply_is_none_and_counted_never_zero(server, tmp_path):
    server.behaviour.reply = lambda body: "I cannot decide." if "It is 0." in str(body) else "Score: 3"
    j = judge(server, tmp_path)
    assert j(**rows(3)) == [None, 0.3, 0.3]
    assert j.none_reasons == {"unparsable": 1}
    assert j.usage["unparsable"] == 1
    j(**rows(3))  # from the cache: still None, still counted
    assert j.none_reasons == {"unparsable": 1} and server.requests == 3


def test_429_waits_the_retry_after_then_succeeds(server, tmp_path):
    server.behaviour.failures = [("429", 1)]
    j = judge(server, tmp_path, backoff=0.01)
    start = time.monotonic()
    assert j(**rows(1)) == [0.7]
    assert time.monotonic() - start >= 1.0  # the server's Retry-After, not the 0.01 s backoff
    assert server.requests == 2 and j.usage["requests"] == 2


def test_500_is_retried_and_on_error_applies_after_the_last_try(server, tmp_path):
    server.behaviour.failures = [("500", None)] * 2
    assert judge(server, tmp_path, max_retries=2)(**rows(1)) == [0.7]
    assert server.requests == 3
    server.reset()
    server.behaviour.failures = [("500", None)] * 3
    j = judge(server, tmp_path, max_retries=2, on_error="none")
    with pytest.warns(RuntimeWarning, match="server error: 1"):
        assert j(**rows(1, "b")) == [None]
    assert j.none_reasons == {"server error": 1} and j.usage["failures"] == 1
    server.behaviour.failures = [("500", None)] * 3
    with pytest.warns(RuntimeWarning):
        assert judge(server, tmp_path, max_retries=2, on_error="zero")(**rows(1, "z")) == [0.0]
    server.behaviour.failures = [("500", None)] * 3
    with pytest.raises(RewardError, match=r"failed on completion 0 .*RequestFailed: server error: .*500"):
        judge(server, tmp_path, max_retries=2)(**rows(1, "r"))
    assert judge_cache.stats(tmp_path / "judge.sqlite")["entries"] == 1  # failures are not cached


def test_a_failing_row_is_named_and_not_sent_again(server, tmp_path):
    server.behaviour.fail_when = lambda body: ("500", None) if "It is 2." in str(body) else None
    with pytest.raises(RewardError, match=r"failed on completion 1 \('It is 2.'\): RequestFailed: server error"):
        judge(server, tmp_path, max_retries=1)(**rows(3))
    assert server.requests == 2 + 2  # two good rows, the bad one tried twice; nothing re-sent to find the row
    server.reset()
    j = judge(server, tmp_path, max_retries=1, on_error="none")
    with pytest.warns(RuntimeWarning, match=r"1 judge requests failed after 1 retries \(server error: 1\)"):
        assert j(**rows(3)) == [0.7, None, 0.7]  # the good rows from the cache, the bad one tried again
    assert server.requests == 2 and j.none_reasons == {"server error": 1}
    assert j.usage["failures"] == 1 and j.error_count == 1


def test_the_reward_timeout_bounds_the_whole_call(server, tmp_path):
    server.behaviour.failures = [("hang", None)]
    j = judge(server, tmp_path, timeout=1, request_timeout=60)
    start = time.monotonic()
    with pytest.warns(RuntimeWarning, match="exceeded its 1.0s budget"):
        assert j(**rows(1)) == [None]
    assert time.monotonic() - start < 10 and j.none_reasons == {"timeout": 1}
    assert j(**rows(1)) == [0.7]  # the next call is served


def test_acall_and_async_composition(server, tmp_path):
    import asyncio

    from rewardkit import compose

    server.behaviour.latency = 1.0
    j = judge(server, tmp_path, cache=False)
    both = compose({"rewards": {"a": j, "b": judge(server, tmp_path, cache=False, name="b", temperature=0.1)}})
    assert asyncio.run(j.acall(**rows(2))) == [0.7, 0.7]
    start = time.monotonic()
    assert both(**rows(4)) == [1.4] * 4
    assert time.monotonic() - start < 1.8  # the two judges waited together (one after the other takes >= 2 s)


def test_a_server_that_never_answers_times_out(server, tmp_path):
    server.behaviour.failures = [("hang", None)] * 2
    j = judge(server, tmp_path, request_timeout=0.5, max_retries=1, on_error="none")
    start = time.monotonic()
    with pytest.warns(RuntimeWarning, match="timeout: 1"):
        assert j(**rows(1)) == [None]
    assert time.monotonic() - start < 10
    assert j.none_reasons == {"timeout": 1} and server.requests == 2


def test_malformed_json_is_not_retried(server, tmp_path):
    server.behaviour.failures = [("malformed", None)]
    j = judge(server, tmp_path, on_error="none")
    with pytest.warns(RuntimeWarning, match="malformed reply: 1"):
        assert j(**rows(1)) == [None]
    assert server.requests == 1 and j.none_reasons == {"malformed reply": 1}
    assert j(**rows(1)) == [0.7]  # a failure is not cached


def test_setup_errors_stop_whatever_on_error_says(server, tmp_path, monkeypatch):
    monkeypatch.delenv("JUDGE_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="'JUDGE_TEST_KEY' is not set"):
        judge(server, tmp_path, api_key_env="JUDGE_TEST_KEY", on_error="none")(**rows(1))
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-secret-123")
    j = judge(server, tmp_path, api_key_env="JUDGE_TEST_KEY")
    j(**rows(1))
    assert server.headers[0]["authorization"] == "Bearer sk-secret-123"
    assert "sk-secret" not in repr(j) and "sk-secret" not in pickle.dumps(j).decode("latin-1")


def test_concurrency_limit_is_observed_on_the_server(server, tmp_path):
    server.behaviour.latency = 0.2
    j = judge(server, tmp_path, max_concurrency=3, cache=False)
    j(**rows(12))
    assert server.requests == 12
    assert 2 <= server.max_in_flight <= 3


def test_eight_threads_share_the_limit_the_cache_and_the_totals(server, tmp_path):
    server.behaviour.latency = 0.05
    server.behaviour.reply = lambda body: f"Score: {len(body['messages'][0]['content']) % 11}"
    j = judge(server, tmp_path, max_concurrency=4)
    expected = judge(server, tmp_path, cache=False, name="plain")
    want = {t: expected(**rows(10, f"t{t % 4} ")) for t in range(4)}
    server.reset()
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            results[t] = j(**rows(10, f"t{t % 4} "))  # threads t and t+4 score the same rows
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert all(results[t] == want[t % 4] for t in range(8))
    assert server.max_in_flight <= 4  # one limit across the threads' event loops
    assert 40 <= server.requests <= 80  # each distinct request at least once; a duplicate only when both missed
    assert j.usage["requests"] == server.requests and j.usage["requests"] + j.usage["cache_hits"] == 80
    assert judge_cache.stats(tmp_path / "judge.sqlite")["entries"] == 40


WRITER = """
import sys
sys.path.insert(0, {root!r})
from rewardkit import get_reward
j = get_reward("judge", base_url={url!r}, model="m", user_template="{{completion}}", score={{"min": 0, "max": 10}},
               cache_path={path!r})
for start in range(0, 60, 6):
    assert j(completions=[f"{tag} " + str(i) for i in range(start, start + 6)]) == [0.7] * 6
print(j.usage["requests"])
"""


def test_two_processes_write_one_cache_at_once(server, tmp_path):
    path = str(tmp_path / "shared.sqlite")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER.format(root=str(ROOT), url=server.url, path=path, tag=tag)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert [int(o[0]) for o in outs] == [60, 60]
    stats = judge_cache.stats(Path(path))
    assert stats["entries"] == 120 and stats["requests"] == 120
    j = get_reward(
        "judge",
        base_url=server.url,
        model="m",
        user_template="{completion}",
        score={"min": 0, "max": 10},
        cache_path=path,
    )
    before = server.requests
    j(completions=[f"{tag} {i}" for tag in "ab" for i in range(60)])
    assert server.requests == before


def test_max_requests_stops_calling_and_says_so_once(server, tmp_path):
    j = judge(server, tmp_path, max_requests=4, max_concurrency=2)
    with pytest.warns(RuntimeWarning, match="judge budget is spent") as seen:
        out = j(**rows(6))
    assert sum(v is not None for v in out) == 4 and server.requests == 4
    assert j.none_reasons == {"budget spent": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once: the next call is silent
        assert j(**rows(6))[:4] == out[:4] and server.requests == 4
    assert len([w for w in seen if "budget" in str(w.message)]) == 1


def test_token_budget(server, tmp_path):
    j = judge(server, tmp_path, max_total_tokens=1, max_concurrency=1)
    with pytest.warns(RuntimeWarning, match="max_total_tokens 1"):
        out = j(**rows(3))
    assert out[0] == 0.7 and out[1:] == [None, None] and server.requests == 1


def test_requests_per_minute_is_a_token_bucket(server, tmp_path):
    j = judge(server, tmp_path, requests_per_minute=1200, max_concurrency=64, cache=False)  # 20/s, burst 20
    start = time.monotonic()
    j(**rows(50))
    assert time.monotonic() - start >= 1.4  # 20 at once, then 30 at 20 per second


def test_log_metric_gets_each_calls_counts(server, tmp_path):
    logged: list[tuple[str, float]] = []
    j = judge(server, tmp_path, name="judged")
    j(**rows(3), log_metric=lambda k, v: logged.append((k, v)))
    j(**rows(3), log_metric=lambda k, v: logged.append((k, v)))
    first, second = dict(logged[:6]), dict(logged[6:])
    assert first["rewardkit/judged/requests"] == 3 and first["rewardkit/judged/cache_hits"] == 0
    assert second["rewardkit/judged/requests"] == 0 and second["rewardkit/judged/cache_hits"] == 3
    assert first["rewardkit/judged/prompt_tokens"] > 0 and second["rewardkit/judged/prompt_tokens"] == 0


def test_choices_json_and_logprobs(server, tmp_path):
    server.behaviour.reply = lambda body: "A is long, but B."
    assert judge(server, tmp_path, score=None, choices={"A": 1.0, "B": 0.25})(**rows(1)) == [0.25]
    server.behaviour.reply = lambda body: '```json\n{"verdict": "fine", "score": 6}\n```'
    assert judge(server, tmp_path, json_field="score")(**rows(1, "j")) == [0.6]
    assert server.bodies[-1]["response_format"] == {"type": "json_object"}
    server.behaviour.reply = lambda body: "4"
    server.behaviour.top_logprobs = lambda body, text: [
        ("4", math.log(0.5)),
        ("5", math.log(0.3)),
        ("x", math.log(0.2)),
    ]
    out = judge(server, tmp_path, score={"min": 1, "max": 5}, logprobs=True, top_logprobs=5)(**rows(1, "l"))
    assert out == [pytest.approx((0.5 * 0.75 + 0.3 * 1.0) / 0.8)]
    assert server.bodies[-1]["logprobs"] is True and server.bodies[-1]["top_logprobs"] == 5


def test_pickles_and_scores_after(server, tmp_path):
    j = pickle.loads(pickle.dumps(judge(server, tmp_path)))
    assert j(**rows(2)) == [0.7, 0.7]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"score": None}, "exactly one of score or choices"),
        ({"choices": {"A": 1.0}}, "exactly one of score or choices"),
        ({"score": {"min": 5, "max": 5}}, "must be below max"),
        ({"logprobs": True}, "whole numbers within 0-9"),
        ({"logprobs": True, "json_field": "s", "score": {"min": 1, "max": 5}}, "cannot be combined"),
        ({"base_url": "127.0.0.1:8000"}, "base_url"),
        ({"api_key_env": "sk-abc!"}, "api_key_env"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"extra_body": {"x": float("nan")}}, "extra_body"),
        ({"extra_body": {"x": object()}}, "extra_body: is not JSON"),
        ({"choices": {" A": 1.0}, "score": None}, "without surrounding spaces"),
        ({"score": {"min": 0, "max": float("inf")}}, "score"),
    ],
)
def test_bad_params(server, tmp_path, params, match):
    with pytest.raises(ConfigError, match=match):
        judge(server, tmp_path, **params)


def test_a_file_that_is_not_a_judge_cache_is_refused(server, tmp_path):
    import sqlite3

    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(ConfigError, match="not a rewardkit judge cache"):
        judge(server, tmp_path, cache_path=str(other))(**rows(1))
    text = tmp_path / "notes.txt"
    text.write_text("hello " * 400)
    with pytest.raises(ConfigError, match="not a SQLite database"):
        judge(server, tmp_path, cache_path=str(text))(**rows(1))
    assert server.requests == 0 and text.read_text() == "hello " * 400


def test_missing_prompt_is_a_data_error(server, tmp_path):
    with pytest.raises(DataError, match=r"\{prompt\} is missing"):
        judge(server, tmp_path)(completions=["x"], answer=["y"])


def test_stored_replies_are_json(server, tmp_path):
    import sqlite3

    judge(server, tmp_path)(**rows(1))
    (reply,) = sqlite3.connect(tmp_path / "judge.sqlite").execute("SELECT reply FROM replies").fetchone()
    assert json.loads(reply)["text"] == "Score: 7"


def test_eight_openers_of_a_new_cache_at_once_all_get_it(tmp_path):
    """Opening a new cache from several processes or threads at once: none takes it for a foreign file or fails
    on "database is locked" (the old check read the id and the tables outside one transaction: 31 of 40 trials
    failed)."""
    import threading

    from rewardkit.rewards.judge_cache import connect

    for trial in range(20):
        path = tmp_path / f"cache-{trial}.sqlite"
        barrier, errors = threading.Barrier(8), []

        def open_it(path=path, barrier=barrier, errors=errors) -> None:
            barrier.wait()
            try:
                conn = connect(path)
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
                conn.close()
            except Exception as exc:  # collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, (trial, errors[:2])


def test_a_score_is_read_as_the_whole_number_written():
    """ "1,000" was read as 0 (its last three digits) and "1e1" as 1: a number is read whole, then range-checked."""
    from rewardkit.rewards.judge_parse import ReplyParser

    parse = ReplyParser(score_range=(0, 10)).parse
    assert [parse(r) for r in ("The score is 1,000", "Score: 1e1", "Score: 7", "8/10", "5,6,7")] == [
        None,
        1.0,
        0.7,
        0.8,
        0.7,
    ]
