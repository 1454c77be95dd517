"""The reward contract every reward inherits: how TRL calls it, what it returns, how it fails."""

import json
import pickle
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewardkit import (
    ConfigError,
    DataError,
    Reward,
    RewardError,
    RewardParams,
    get_reward,
)
from rewardkit.core.plugins import register_plugin, unregister_plugin
from rewardkit.rewards.worker_scoring import pool_of
from rewardkit.text.numeric import extract_answer
from tests.conftest import (
    ANY_TEXT,
    FUZZ_SETTINGS,
    INF,
    NAN,
    SCORE_SPEC,
    Row,
    em,
    raises,
    row_ids,
    run_cli,
    run_row,
)


class Flaky(Reward):
    """Raises on completions containing 'boom'; sleeps on 'slow'."""

    name = "flaky"

    def score(self, completion, reference):
        if "boom" in completion:
            raise ValueError("exploded")
        if "slow" in completion:
            time.sleep(30)
        return float(len(completion))


def chat(text):
    return [{"role": "assistant", "content": text}]


def test_trl_keyword_call_ignores_unknown_keywords():
    reward = get_reward("exact_match")
    out = reward(
        prompts=["q1", "q2"],
        completions=["a", "b"],
        completion_ids=[[1], [2]],
        answer=["a", "c"],
        trainer_state=object(),
        log_extra=lambda *a: None,
        log_metric=lambda *a: None,
        other=[1, 2],
    )
    assert out == [1.0, 0.0]
    assert reward.__name__ == "exact_match"


def test_chat_completions_score_last_assistant_message():
    reward = get_reward("exact_match")
    conv = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert reward(completions=[chat("a"), conv, chat("b")], answer=["a", "a", "a"]) == [1.0, 1.0, 0.0]
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "a"}]}]
    assert reward(completions=[parts], answer=["a"]) == [1.0]
    assert reward(completions=[[{"role": "assistant", "content": None}]], answer=[""]) == [1.0]


@pytest.mark.parametrize(
    "completions,match",
    [
        ([[{"role": "assistant"}]], "has no 'content'"),
        ([[]], "empty message list"),
        ([None], "must be a string or a list of chat messages"),
        ([3], "must be a string"),
        ([[{"role": "assistant", "content": 5}]], "content must be a string"),
    ],
)
def test_bad_completions_are_named(completions, match):
    with pytest.raises(DataError, match=match):
        get_reward("exact_match")(completions=completions, answer=["x"])


def test_missing_reference_column_names_columns():
    with pytest.raises(DataError, match=r"needs the reference column 'answer'.*solution, topic"):
        get_reward("math_exact_match")(completions=["1"], solution=["1"], topic=["x"], trainer_state=None)
    assert get_reward("math_exact_match", reference="solution")(completions=["1"], solution=["1"]) == [1.0]


def test_reference_length_mismatch():
    with pytest.raises(DataError, match="has 1 values for 2 completions"):
        get_reward("exact_match")(completions=["a", "b"], answer=["a"])


def test_reference_values():
    reward = get_reward("exact_match")
    assert reward(completions=["7", "x", "y", "b"], answer=[7, None, ["z", "y"], ""]) == [1.0, None, 1.0, 0.0]
    with pytest.raises(DataError, match="row 0"):
        reward(completions=["a"], answer=[{"nested": 1}])


def test_missing_policy_for_views():
    zero = get_reward("math_exact_match", completion_view="boxed")
    none = get_reward("math_exact_match", completion_view="boxed", missing="none")
    assert zero(completions=["42", r"\boxed{42}"], answer=["42", "42"]) == [0.0, 1.0]
    assert none(completions=["42", r"\boxed{42}"], answer=["42", "42"]) == [None, 1.0]
    ref_view = get_reward("exact_match", reference_view={"view": "after", "marker": "A:"})
    assert ref_view(completions=["x", "x"], answer=["A: x", "no marker"]) == [1.0, None]


def test_gold_without_number_is_not_applicable():
    reward = get_reward("math_exact_match")
    assert reward(completions=["5", "no number"], answer=["no gold", "5"]) == [None, 0.0]


@pytest.mark.parametrize(
    "params,match",
    [
        ({"max_lenght": 10}, "Did you mean 'max_length'"),
        ({"max_length": -1}, "max_length: Input should be greater than 0"),
        ({"max_length": 10, "mode": "soft_overlong"}, "cache"),
        ({"max_length": 10, "on_error": "ignore"}, "on_error: Input should be"),
        ({"max_length": 10, "timeout": 0}, "timeout: Input should be greater than 0"),
    ],
)
def test_params_validated_at_construction(params, match):
    with pytest.raises(ConfigError, match=match):
        get_reward("brevity", **params)


def test_rewards_pickle_and_keep_name():
    for reward in [
        get_reward("math_exact_match", name="acc"),
        get_reward("exact_match", alternatives="#"),
        get_reward("brevity", max_length=5),
        get_reward("format_regex", pattern=r"^\d+$"),
        get_reward("math_exact_match", completion_view={"view": "regex", "pattern": r"= (\d+)"}),
    ]:
        clone = pickle.loads(pickle.dumps(reward))
        assert clone.__name__ == reward.__name__
        kwargs = {"completions": ["= 12", "abc"], "answer": ["12", "12"]}
        assert clone(**kwargs) == reward(**kwargs)


def test_on_error_raise_names_reward_and_index():
    reward = Flaky()
    with pytest.raises(RewardError, match=r"'flaky' failed on completion 1 .*exploded"):
        reward(completions=["ok", "boom"])


def test_on_error_none_and_zero_count_and_log():
    logged = {}
    assert Flaky(on_error="none")(completions=["ok", "boom"], log_metric=logged.__setitem__) == [2.0, None]
    assert logged == {"rewardkit/flaky/errors": 1.0}
    assert Flaky(on_error="zero")(completions=["boom", "abc"]) == [0.0, 3.0]


def test_timeout_kills_a_stuck_call_and_recovers():
    reward = Flaky(timeout=1.0)
    logged = {}
    start = time.perf_counter()
    with pytest.warns(RuntimeWarning, match="exceeded its 1.0s budget"):
        assert reward(completions=["slow", "ok"], log_metric=logged.__setitem__) == [None, None]
    assert (
        time.perf_counter() - start < 20
    )  # the worker start-up is excluded from the budget; the 30 s sleep is not waited for
    assert logged == {"rewardkit/flaky/timeouts": 1.0}
    assert reward(completions=["ok"]) == [2.0]  # a fresh worker takes over
    assert pool_of(reward).alive() == 1  # the killed worker was replaced, by one
    pool_of(reward).close()


def test_wrong_length_from_a_reward_is_an_error():
    class Short(Reward):
        name = "short"

        def score_batch(self, completions, references, **context):
            return [1.0]

    with pytest.raises(RewardError, match="returned 1 scores for 2 completions"):
        Short()(completions=["a", "b"])


def test_non_numeric_score_is_an_error_and_nan_is_none():
    class Odd(Reward):
        name = "odd"

        def score(self, completion, reference):
            return {"a": "x"}.get(completion, float("nan"))

    assert Odd()(completions=["b"]) == [None]
    with pytest.raises(RewardError, match="returned 'x'"):
        Odd()(completions=["a"])


def test_needs_reference_without_column_name():
    class NeedsRef(Reward):
        name = "needs_ref"
        needs_reference = True

    with pytest.raises(ConfigError, match="reference: must name the dataset column"):
        NeedsRef()


def test_called_without_completions():
    with pytest.raises(DataError, match="without completions"):
        get_reward("brevity", max_length=3)(prompts=["x"])


def test_custom_params_subclass():
    class Scaled(Reward):
        name = "scaled"

        class Params(RewardParams):
            k: float = 2.0

        def score(self, completion, reference):
            return self.params.k * len(completion)

    assert Scaled(k=0.5)(completions=["abcd"]) == [2.0]


def count_digits(completions, **kwargs):
    """A plain TRL-style reward function, as a plugin might register it."""
    return [float(sum(ch.isdigit() for ch in c)) for c in completions]


def test_plain_function_gets_the_contract():
    from rewardkit.core.hookspecs import hookimpl

    class FnPlugin:
        @hookimpl
        def register_rewards(self, register):
            register("count_digits", count_digits)

    register_plugin(FnPlugin(), name="fn-plugin")
    try:
        reward = get_reward("count_digits", completion_view="after_think")
        assert reward.__name__ == "count_digits"
        out = reward(completions=[chat("<think>123</think> 45"), "no think 9"], trainer_state=None)
        assert out == [2.0, 0.0]
        assert pickle.loads(pickle.dumps(reward))(completions=["<think></think>7"]) == [1.0]
    finally:
        unregister_plugin("fn-plugin")


BAD_INPUTS = [
    # 4. Parameters accepted too loosely: each is a clear error at construction.
    Row(
        "completions-a-string",
        em(completions="abc", answer=["a"] * 3),
        raises(
            DataError,
            r"completions must be a "
            "list .*got str",
        ),
    ),
    Row("completions-bytes", em(completions=b"abc", answer=["a"] * 3), raises(DataError, r"got bytes")),
    Row(
        "completions-a-generator",
        em(completions=(x for x in "ab"), answer=["a"] * 2),
        raises(DataError, r"got generator"),
    ),
    Row(
        "max_length-true",
        lambda c: get_reward("brevity", max_length=True),
        raises(ConfigError, r"reward 'brevity': max_length: .*valid integer \(got True\)"),
    ),
    Row(
        "max_length-string",
        lambda c: get_reward("brevity", max_length="5"),
        raises(ConfigError, r"max_length: .*valid integer \(got '5'\)"),
    ),
    Row(
        "max_length-float",
        lambda c: get_reward("brevity", max_length=5.0),
        raises(ConfigError, r"max_length: .*valid integer \(got 5.0\)"),
    ),
    *[
        Row(
            f"format_regex-regex_timeout-{v}",
            lambda c, v=v: get_reward("format_regex", pattern="a", regex_timeout=v),
            raises(ConfigError, r"reward 'format_regex': regex_timeout: "),
        )
        for v in (INF, 1e308, 0, -1, NAN, True)
    ],
    *[
        Row(
            f"reward-timeout-{v}",
            lambda c, v=v: get_reward("brevity", max_length=5, timeout=v),
            raises(ConfigError, r"reward 'brevity': timeout: "),
        )
        for v in (INF, 1e308, 0, -1, NAN, True)
    ],
    Row(
        "completion_ids-wrong-length",
        lambda c: get_reward("brevity", max_length=5, unit="tokens")(completions=["a", "b"], completion_ids=[[1]]),
        raises(DataError, r"completion_ids has 1 items for 2 completions"),
    ),
    Row(
        "completion_ids-wrong-length-hidden-by-a-view",  # one row without a view match must not hide it
        lambda c: get_reward("brevity", max_length=5, unit="tokens", completion_view="boxed")(
            completions=["x", r"\boxed{a}"], completion_ids=[[1]]
        ),
        raises(DataError, r"completion_ids has 1 items for 2 completions"),
    ),
    Row(
        "completion_ids-not-a-list",
        lambda c: get_reward("brevity", max_length=5, unit="tokens")(completions=["a"], completion_ids=3),
        raises(DataError, r"completion_ids is int, not a list"),
    ),
]


@pytest.mark.parametrize("row", BAD_INPUTS, ids=row_ids(BAD_INPUTS))
def test_bad_input(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run_row(row, tmp_path, monkeypatch, capsys)


def _assistant(content: object) -> list[dict]:
    return [{"role": "assistant", "content": content}]


@pytest.mark.parametrize(
    "content, text",
    [
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "ab"),  # TRL / OpenAI chat
        ([{"type": "image"}, {"type": "text", "text": "a"}], "a"),  # TRL multimodal
        ([{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "a"}], "a"),  # OpenAI
        ([{"type": "output_text", "text": "a"}], "a"),  # OpenAI Responses
        ([{"type": "refusal", "refusal": "no"}], ""),
    ],
    ids=["text-parts", "trl-image", "openai-image-url", "responses-output-text", "refusal"],
)
def test_accepted_content_parts(content, text):
    from rewardkit.rewards.inputs import completion_text

    assert completion_text(_assistant(content), 0) == text


@pytest.mark.parametrize(
    "content, expected",
    [
        ([{"type": "text", "text": None}], "a text part's 'text' must be a string, got NoneType"),
        ([{"type": "text", "text": 5}], "a text part's 'text' must be a string, got int"),
        (["hi"], "a part must be an object, got str 'hi'"),
        ([{"text": "hi"}], "a part without 'type'"),
        ([{"type": "tool_result", "text": "x"}], "a part of type 'tool_result' is not a text part"),
    ],
    ids=["text-null", "text-number", "bare-string", "no-type", "unknown-type"],
)
def test_other_content_parts_are_refused_in_one_line(tmp_path, content, expected):
    (tmp_path / "spec.yaml").write_text(SCORE_SPEC)
    (tmp_path / "chat.jsonl").write_text(json.dumps({"completion": _assistant(content), "answer": "1"}) + "\n")
    proc = run_cli("score", "spec.yaml", "-i", "chat.jsonl", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"completions[0].content[0]: {expected}. Hint:" in proc.stderr


def test_tuple_columns_follow_the_scored_rows():
    reward = get_reward("brevity", max_length=5, unit="tokens", completion_view="boxed")
    # the second completion has no \\boxed{}: it is not scored, and its token ids must go with it
    assert reward(completions=[r"\boxed{1}", "none"], completion_ids=([1, 2], [1, 2, 3])) == [0.6, 0.0]


REWARDS = [
    get_reward("math_exact_match"),
    get_reward("exact_match", alternatives="#"),
    get_reward("brevity", max_length=50),
    get_reward("brevity", max_length=50, mode="soft_overlong", cache=10),
    get_reward("format_regex", pattern=r"^\d+$"),
    get_reward("math_exact_match", completion_view="boxed"),
]


RANGES = {"math_exact_match": (0, 1), "exact_match": (0, 1), "brevity": (-1, 1), "format_regex": (0, 1)}


@FUZZ_SETTINGS
@given(st.lists(st.tuples(ANY_TEXT, st.one_of(st.none(), ANY_TEXT)), min_size=1, max_size=5))
def test_rewards_in_range_and_none_only_where_documented(rows):
    completions = [c for c, _ in rows]
    answers = [a for _, a in rows]
    for reward in REWARDS:
        out = reward(completions=completions, answer=answers)
        assert len(out) == len(rows)
        low, high = RANGES[reward.name]
        for score, answer in zip(out, answers):
            if score is None:
                # None only when the reward compares with a reference that is absent or has no number.
                assert reward.needs_reference and (answer is None or extract_answer(answer) is None)
            else:
                assert low <= score <= high
