"""`judge` where every reward goes: compose (beside exact_match), a preset, `rewardkit score`, `select`, and a real
CPU GRPO run with best_checkpoint, its per-step counts in TRL's logs and the end-of-run summary."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardkit import compose, get_reward
from rewardkit.core import plugins
from rewardkit.core.hookspecs import hookimpl
from rewardkit.selection.checkpoints import select
from tests.conftest import closed_port, rewardkit_serve, run_cli
from tests.rewards.chat_server import ChatServer, chat_server


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with chat_server() as s:
        s.behaviour.reply = likes_the_gold
        yield s


def likes_the_gold(body: dict) -> str:
    """'Score: 9' when the answer equals the gold ("answer=4|gold=4|"), else 'Score: 1'."""
    answer, gold = (part.split("=", 1)[1] for part in body["messages"][0]["content"].split("|")[:2])
    return "Score: 9" if answer == gold else "Score: 1"


def judge_spec(server: ChatServer, tmp_path: Path) -> dict:
    return {
        "use": "judge",
        "base_url": server.url,
        "model": "m",
        "user_template": "answer={completion}|gold={reference}|",
        "reference": "answer",
        "score": {"min": 0, "max": 10},
        "cache_path": str(tmp_path / "judge.sqlite"),
    }


def test_composed_with_exact_match(server, tmp_path):
    composed = compose(
        {
            "rewards": {"judge": judge_spec(server, tmp_path), "em": {"use": "exact_match", "reference": "answer"}},
            "combine": "0.5 * judge + 0.5 * em",
        }
    )
    out = composed(completions=["4", "5", "4"], answer=["4", "4", "9"])
    assert out == [pytest.approx(0.95), pytest.approx(0.05), pytest.approx(0.05)]
    assert server.requests == 3
    funcs, weights = compose(
        {"rewards": {"judge": judge_spec(server, tmp_path), "em": {"use": "exact_match", "reference": "answer"}}}
    ).to_trl()
    assert [f.__name__ for f in funcs] == ["judge", "em"] and weights == [1.0, 1.0]


class JudgePreset:
    @hookimpl
    def register_presets(self, register):
        register.preset(
            "judged",
            {
                "rewards": {
                    "judge": {
                        "use": "judge",
                        "base_url": "http://127.0.0.1:9/v1",
                        "model": "m",
                        "user_template": "answer={completion}|gold={reference}|",
                        "reference": "answer",
                        "score": {"min": 0, "max": 10},
                    },
                    "em": {"use": "exact_match", "reference": "answer"},
                }
            },
        )


def test_preset_with_the_server_set(server, tmp_path):
    own = plugins.Plugins(entry_points=lambda: [])
    with plugins.using(own):
        own.register(JudgePreset(), name="judged", source="judged")
        composed = compose(
            {"preset": "judged", "set": {"judge.base_url": server.url, "judge.cache_path": str(tmp_path / "c.sqlite")}}
        )
        assert composed(completions=["4"], answer=["4"]) == [pytest.approx(1.9)]


def test_rewardkit_score_prints_what_it_spent(server, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"rewards": {"judge": judge_spec(server, tmp_path)}}))
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"completion": c, "answer": "4"}) + "\n" for c in ("4", "5", "6")))
    first = run_cli("score", spec, "--input", rows, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "Spent: judge: 3 requests, 0 cache hits" in first.stdout
    second = run_cli("score", spec, "--input", rows, "--json", timeout=120)
    assert json.loads(second.stdout)["usage"]["judge"]["requests"] == 0
    assert json.loads(second.stdout)["usage"]["judge"]["cache_hits"] == 3
    assert server.requests == 3


def test_select_ranks_checkpoints_by_the_judge(server, tmp_path):
    folder = tmp_path / "inference"
    folder.mkdir()
    for step, outputs in ((1, ["1", "x", "y"]), (2, ["1", "2", "y"]), (3, ["z", "x", "y"])):
        records = [{"id": i, "output": o, "answer": str(i + 1)} for i, o in enumerate(outputs)]
        (folder / f"step_{step}.json").write_text(json.dumps({"step": step, "epoch": step, "records": records}))
    result = select(folder, {"rewards": {"judge": judge_spec(server, tmp_path)}}, bootstrap=0)
    assert result.best.step == 2
    assert server.requests == 5  # 9 rows, 5 distinct (answer, gold) pairs: the rest from the cache


@pytest.mark.slow
def test_grpo_with_judge_and_exact_match_logs_counts_and_best_checkpoint_uses_it(
    server, tmp_path, tiny_lm_dir, trainer_defaults
):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    import rewardkit
    from rewardkit.composition.scoring import reward_usage

    spec = {"rewards": {"judge": judge_spec(server, tmp_path), "em": {"use": "exact_match", "reference": "answer"}}}
    composed = compose(spec)
    funcs, weights = composed.to_trl()
    val = [{"id": i, "prompt": f"{i}+0=", "answer": str(i)} for i in range(4)]
    best = rewardkit.get_callback("best_checkpoint", spec=spec)
    callbacks = rewardkit.link_callbacks(
        [
            rewardkit.get_callback(
                "checkpoint_inference", dataset=val, reference_columns=["answer"], on="save", max_new_tokens=3
            ),
            best,
        ]
    )
    args = GRPOConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=3,
        reward_weights=weights,
        **dict(trainer_defaults, save_strategy="steps", save_steps=1),
    )
    trainer = GRPOTrainer(
        model=str(tiny_lm_dir),
        reward_funcs=funcs,
        args=args,
        train_dataset=Dataset.from_list([{"prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(8)]),
        callbacks=callbacks,
    )
    trainer.train()
    logs = [e for e in trainer.state.log_history if "rewards/judge/mean" in e]
    assert len(logs) == 2
    for entry in logs:  # each step's own counts, from log_metric
        assert entry["rewardkit/judge/requests"] + entry["rewardkit/judge/cache_hits"] == 4
        assert 0.1 - 1e-9 <= entry["rewards/judge/mean"] <= 0.9 + 1e-9
    usage = reward_usage(composed)["judge"]
    assert usage["requests"] + usage["cache_hits"] == 8 and usage["prompt_tokens"] > 0
    record = json.loads((tmp_path / "run" / "inference" / "scores.json").read_text())
    assert [c["step"] for c in record["checkpoints"]] == [1, 2]
    assert all(0.1 - 1e-9 <= c["score"] <= 0.9 + 1e-9 for c in record["checkpoints"])


def test_judge_cache_stats_and_clear(server, tmp_path):
    spec = judge_spec(server, tmp_path)
    judge = compose({"rewards": {"judge": spec}})
    judge(completions=["4", "5"], answer=["4", "4"])
    judge(completions=["4", "5"], answer=["4", "4"])
    path = tmp_path / "judge.sqlite"
    stats = run_cli("judge-cache", "stats", path, "--json")
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert (data["entries"], data["hits"], data["requests"], data["models"]) == (2, 2, 2, {"m": 2})
    assert "cache hits" in run_cli("judge-cache", "stats", path).stdout
    cleared = run_cli("judge-cache", "clear", path)
    assert cleared.returncode == 0 and "Removed 2 cached replies" in cleared.stdout
    assert json.loads(run_cli("judge-cache", "stats", path, "--json").stdout)["entries"] == 0
    judge(completions=["4"], answer=["4"])
    assert server.requests == 3  # cleared: asked again


@pytest.mark.parametrize("kind", ["missing", "text", "other-sqlite"])
def test_judge_cache_refuses_what_is_not_a_cache(tmp_path, kind):
    import sqlite3

    path = tmp_path / "x.sqlite"
    if kind == "text":
        path.write_text("not a database " * 100)
    elif kind == "other-sqlite":
        sqlite3.connect(path).execute("CREATE TABLE mine (x)").connection.commit()
    before = path.read_bytes() if path.exists() else None
    for command in ("stats", "clear"):
        done = run_cli("judge-cache", command, path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "Hint:" in done.stderr
    assert (path.read_bytes() if path.exists() else None) == before  # nothing written or emptied


def test_train_summary_says_what_the_judge_spent():
    from rewardkit.train.summary import StageResult, summary_lines

    usage = {"requests": 12, "cache_hits": 4, "prompt_tokens": 900, "completion_tokens": 24, "unparsable": 2}
    result = StageResult(
        "grpo", "grpo", "/runs/x/grpo", "/runs/x/grpo/merged", 2, 0.1, 3.0, reward_usage={"judge": usage}
    )
    assert "  spent: judge: 12 requests, 4 cache hits, 900 prompt + 24 completion tokens (2 unparsable)" in (
        summary_lines(result, "train.yaml")
    )
    back = StageResult.from_record({**result.__dict__, "reward_usage": {"judge": usage, "bad": 3}})
    assert sum("spent:" in line for line in summary_lines(back, "train.yaml")) == 1  # a damaged entry is skipped


@pytest.mark.slow
def test_rewardkit_train_with_a_judge_prints_what_it_spent(server, tmp_path, tiny_lm_dir):
    import subprocess
    import sys

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+{i}=", "answer": str(2 * i)}) + "\n" for i in range(10)))
    config = {
        "stage": "grpo",
        "model": str(tiny_lm_dir),
        "output_dir": str(tmp_path / "run"),
        "dataset": {"path": str(data), "eval_size": 2},
        "rewards": {
            "rewards": {"judge": judge_spec(server, tmp_path), "em": {"use": "exact_match", "reference": "answer"}}
        },
        "callbacks": [
            {"name": "checkpoint_inference", "dataset": "@eval", "reference_columns": ["answer"], "max_new_tokens": 3},
            {"name": "best_checkpoint", "spec": "@rewards"},
        ],
        "trainer": {
            "max_steps": 2,
            "per_device_train_batch_size": 4,
            "num_generations": 2,
            "max_completion_length": 3,
            "logging_steps": 1,
            "save_strategy": "steps",
            "save_steps": 2,
            "eval_strategy": "steps",
            "eval_steps": 2,
            "per_device_eval_batch_size": 2,
            "activation_checkpointing": False,
            "disable_tqdm": True,
            "dataloader_num_workers": 0,
        },
    }
    path = tmp_path / "train.json"
    path.write_text(json.dumps(config))
    done = subprocess.run(
        [sys.executable, "-m", "rewardkit", "train", str(path)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    spent = [line for line in done.stdout.splitlines() if "spent: judge" in line]
    assert len(spent) == 2, done.stdout[-3000:]  # the training reward's judge, and best_checkpoint's
    usage = json.loads((tmp_path / "run" / "rewardkit_stage.json").read_text())["reward_usage"]
    training, scoring = usage["judge"], usage["judge (BestCheckpointCallback)"]
    assert f"spent: judge: {training['requests']} requests, {training['cache_hits']} cache hits" in spent[0]
    # 2 steps x 4 completions; TRL's own evaluation is off because best_checkpoint generates the eval rows
    # (issue 29: each checkpoint's eval rows are generated once), so the training judge scores no eval batch
    assert training["requests"] + training["cache_hits"] == 8
    # Every row the server answered was asked once by one of the two (the cache file is shared: no row twice).
    assert training["requests"] + scoring["requests"] == server.requests
    assert scoring["requests"] + scoring["cache_hits"] == 2  # the eval set's two rows
    assert json.loads((tmp_path / "run" / "inference" / "scores.json").read_text())["checkpoints"][0]["step"] == 2


# --- the preflight: one GET {base_url}/models before anything heavy (score, select, serve, train) ---------------
@pytest.mark.parametrize("case", ["nothing listening", "wrong path", "key refused", "key unset", "unknown model"])
def test_preflight_names_the_reward_the_url_and_the_fix(server, tmp_path, monkeypatch, case):
    from rewardkit.core.errors import ConfigError
    from rewardkit.models import compose_checked

    spec = dict(judge_spec(server, tmp_path), api_key_env="JUDGE_PREFLIGHT_KEY")
    monkeypatch.setenv("JUDGE_PREFLIGHT_KEY", "sk-right")
    server.behaviour.api_key = "sk-right"
    server.behaviour.models = ["m", "other"]
    expected = {
        "nothing listening": (r"cannot reach the judge server at http://127\.0\.0\.1:\d+/v1/models", "start the judge"),
        "wrong path": (r"GET http://127\.0\.0\.1:\d+/models answered HTTP 404", "usually ends in /v1"),
        "key refused": (r"refused the API key \(HTTP 401", "JUDGE_PREFLIGHT_KEY"),
        "key unset": (r"'JUDGE_PREFLIGHT_KEY' is not set", "export JUDGE_PREFLIGHT_KEY"),
        "unknown model": (r"model 'nope' is not served at .* \(it serves 'm', 'other'\)", "grader.model="),
    }[case]
    if case == "nothing listening":
        spec["base_url"] = f"http://127.0.0.1:{closed_port()}/v1"
    elif case == "wrong path":
        spec["base_url"] = server.url.removesuffix("/v1")
    elif case == "key refused":
        monkeypatch.setenv("JUDGE_PREFLIGHT_KEY", "sk-wrong")
    elif case == "key unset":
        monkeypatch.delenv("JUDGE_PREFLIGHT_KEY")
    else:
        spec["model"] = "nope"
    with pytest.raises(ConfigError, match=expected[0]) as info:
        compose_checked({"rewards": {"grader": spec}})
    text = str(info.value)
    assert "\n" not in text and "reward 'grader'" in text and expected[1] in text.split("Hint:")[1], text
    assert "sk-right" not in text and "sk-wrong" not in text
    assert server.requests == 0  # no chat completion was paid for


def test_preflight_passes_with_the_key_sent_to_base_url_only(server, tmp_path, monkeypatch):
    from rewardkit.models import compose_checked

    monkeypatch.setenv("JUDGE_PREFLIGHT_KEY", "sk-right")
    server.behaviour.api_key = "sk-right"
    server.behaviour.models = ["m"]
    spec = dict(judge_spec(server, tmp_path), api_key_env="JUDGE_PREFLIGHT_KEY")
    same = dict(spec, user_template="again: answer={completion}|gold={reference}|")
    composed = compose_checked({"rewards": {"judge": spec, "again": same}})
    assert server.model_lists == ["Bearer sk-right"]  # one GET for two judges of one server, with the key
    assert composed(completions=["4"], answer=["4"]) == [pytest.approx(1.8)]


def test_score_and_train_refuse_an_unreachable_judge_in_one_line(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    judge = {"use": "judge", "base_url": url, "model": "m", "user_template": "{completion}", "score": {"max": 10}}
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"rewards": {"grader": judge}}))
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "1+1=", "completion": "2", "answer": "2"}) + "\n")
    scored = run_cli("score", spec, "--input", rows)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")  # passes the model preflight: the judge's comes after it
    config = tmp_path / "grpo.yaml"
    config.write_text(
        json.dumps(
            {
                "stage": "grpo",
                "model": str(model),
                "dataset": {"path": str(rows)},
                "output_dir": str(tmp_path / "run"),
                "rewards": {"rewards": {"grader": judge}},
            }
        )
    )
    trained = run_cli("train", config)
    for done in (scored, trained):
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert f"reward 'grader': cannot reach the judge server at {url}/models" in done.stderr
        assert "Hint: start the judge server" in done.stderr and "Traceback" not in done.stderr
    assert "stage 'grpo': rewards: reward 'grader'" in trained.stderr
    assert not (tmp_path / "run").exists()  # refused before the run claimed its folder


def test_train_precheck_checks_the_judges_of_callback_specs(server, tmp_path):
    from rewardkit.core.errors import ConfigError
    from rewardkit.train.config import load_stages
    from rewardkit.train.pipeline import precheck

    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "1+1=", "answer": "2"}) + "\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    down = dict(judge_spec(server, tmp_path), base_url=f"http://127.0.0.1:{closed_port()}/v1")
    config = {
        "stage": "grpo",
        "model": str(model),
        "dataset": {"path": str(rows)},
        "output_dir": str(tmp_path / "run"),
        "rewards": {"rewards": {"judge": judge_spec(server, tmp_path)}},
        "callbacks": [{"name": "best_checkpoint", "spec": {"rewards": {"late": down}}}],
    }
    stages, _, _ = load_stages(config)
    with pytest.raises(ConfigError, match=r"stage 'grpo': callbacks\[0\]\.spec: reward 'late': cannot reach"):
        precheck(stages, "c.yaml")
    assert server.model_lists == ["Bearer EMPTY"]  # the stage's own judge was asked first (no key set: the placeholder)


# --- a judge behind `rewardkit serve`: each None row's reason reaches the `remote` reward --------------------------
def verdict(body: dict) -> str:
    text = body["messages"][0]["content"]
    return "I would rather not say." if "mumble" in text else "Score: 8"


def refusal(body: dict) -> str | None:
    return "I can't help with that." if "forbidden" in body["messages"][0]["content"] else None


def failure(body: dict) -> tuple[str, None] | None:
    return ("500", None) if "crash" in body["messages"][0]["content"] else None


REASON_ROWS = ["fine", "mumble", "forbidden", "crash", "fine too", "over budget"]


def reasons_spec(url: str, cache: Path) -> dict:
    """A judge whose rows are None for each reason it knows; max_requests 5: the sixth row is over budget."""
    judge = {
        "use": "judge",
        "base_url": url,
        "model": "m",
        "user_template": "answer={completion}",
        "score": {"min": 0, "max": 10},
        "cache_path": str(cache),
        "on_error": "none",
        "max_retries": 0,
        "max_concurrency": 1,  # sent in row order: the same row is over budget in both processes
        "max_requests": 5,
    }
    return {"rewards": {"judge": judge}}


@pytest.fixture(scope="module")
def judge_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChatServer, str]]:
    folder = tmp_path_factory.mktemp("judge_served")
    with chat_server() as chat:
        chat.behaviour.reply, chat.behaviour.refuse, chat.behaviour.fail_when = verdict, refusal, failure
        (folder / "spec.json").write_text(json.dumps(reasons_spec(chat.url, folder / "served.sqlite")))
        with rewardkit_serve(folder / "spec.json", log=folder / "server.log") as served:
            yield chat, served.url


def test_a_remote_judge_says_why_a_row_is_none_as_the_local_one_does(judge_served, tmp_path):
    chat, url = judge_served
    local = compose(reasons_spec(chat.url, tmp_path / "local.sqlite"))
    with pytest.warns(RuntimeWarning):  # the failed request, the budget: said locally as they are on the server
        expected = local(completions=REASON_ROWS)
    judge = local.components["judge"]
    assert expected == [0.8, None, None, None, 0.8, None]
    assert judge.row_reasons == [None, "unparsable", "refused", "server error", None, "budget spent"]
    assert judge.none_reasons == {"unparsable": 1, "refused": 1, "server error": 1, "budget spent": 1}

    remote = get_reward("remote", url=url, timeout=60)  # the same rows through the server's /score
    assert remote(completions=REASON_ROWS) == expected
    assert remote.row_reasons == [None if r is None else f"remote: judge: {r}" for r in judge.row_reasons]
    assert remote.none_reasons == {f"remote: judge: {k}": v for k, v in judge.none_reasons.items()}


@pytest.mark.parametrize(
    "scale",
    [
        {"score": {"min": -1.5, "max": 2.5}},
        {"score": None, "choices": {"yes": 1.0, "no": 0.0, "maybe": 0.5}},
        {"json_field": "rating", "score": {"min": 1, "max": 10}},
        {"json_field": "verdict", "score": None, "choices": {"A": 1.0, "B": 0.0}},
        {"logprobs": True, "score": {"min": 1, "max": 5}},
    ],
)
def test_the_offline_stand_in_answers_every_parser_without_a_server(tmp_path, scale):
    params = {
        "base_url": f"http://127.0.0.1:{closed_port()}/v1",
        "model": "m",
        "user_template": "{completion}",
        "cache_path": str(tmp_path / "judge.sqlite"),
        "offline_stand_in": True,
    }
    judge = get_reward("judge", **{**params, **scale})
    completions = [f"answer {i}" for i in range(12)]
    first = judge(completions=completions)
    assert None not in first and all(0 <= v <= 1 for v in first) and len(set(first)) > 1
    assert judge(completions=completions) == first  # deterministic
    assert judge.usage["requests"] == 0 and not (tmp_path / "judge.sqlite").exists()


def test_a_real_run_with_a_stand_in_judge_is_warned(tmp_path):
    from rewardkit.train.config import load_stages
    from rewardkit.train.preflight import stand_in_warnings

    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "1+1=", "answer": "2"}) + "\n")
    judge = {"use": "judge", "base_url": "http://127.0.0.1:9/v1", "model": "m", "user_template": "{completion}"}
    judge |= {"score": {"max": 10}, "offline_stand_in": True}
    config = {"stage": "grpo", "model": str(tmp_path), "dataset": {"path": str(rows)}}
    stages, _, _ = load_stages({**config, "rewards": {"rewards": {"j": judge, "em": "exact_match"}}})
    [line] = stand_in_warnings(stages)
    assert line.startswith("warning: stage 'grpo': rewards.j: offline_stand_in is true") and "not a judgement" in line
    stages, _, _ = load_stages({**config, "rewards": {"rewards": {"j": dict(judge, offline_stand_in=False)}}})
    assert stand_in_warnings(stages) == []
