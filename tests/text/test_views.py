import math
import pickle
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewardkit import (
    compose,
    get_view,
)
from rewardkit import get_view as resolve_view
from rewardkit.core.errors import ConfigError, UnknownNameError
from rewardkit.text.numeric import extract_answer, last_boxed, numbers_equal
from tests.conftest import (
    ANY_TEXT,
    FUZZ_FAST,
    FUZZ_SETTINGS,
    INF,
    NAN,
    Row,
    only_rewardkit_errors,
    raises,
    rewards_spec,
    row_ids,
    run_row,
    warm_up_before_deadlines,
)

warm_up_before_deadlines()  # the plugins and the ROUGE scorer load here, outside FUZZ_FAST's deadline


@pytest.mark.parametrize(
    "spec,text,expected",
    [
        ("full", "abc", "abc"),
        ("boxed", r"a \boxed{1} b \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        ("boxed", "no box", None),
        ("boxed", r"\boxed{unbalanced", None),
        ("last_number", "3 apples and 4.5 pears", "4.5"),
        ("last_number", "none", None),
        ({"view": "regex", "pattern": r"Answer: (\w+)"}, "Answer: yes. Answer: no", "yes"),
        ({"view": "regex", "pattern": r"Answer: (\w+)", "occurrence": "last"}, "Answer: yes. Answer: no", "no"),
        ({"view": "regex", "pattern": r"(?P<a>\d+)", "group": "a"}, "x 12", "12"),
        ({"view": "regex", "pattern": r"\d+", "group": 0}, "x 12", "12"),
        ({"view": "after", "marker": "Answer:"}, "think. Answer:  42 ", "42"),
        ({"view": "after", "marker": "#", "occurrence": "last"}, "a#b#c", "c"),
        ({"view": "before", "marker": "가 옳다"}, '"나는"가 옳다. 이유', '"나는"'),
        ({"view": "after", "marker": "X"}, "no marker", None),
        ("after_think", "<think>1</think>a</think> final", "final"),
        ("after_think", "still thinking", None),
        (["after_think", "boxed"], r"<think>\boxed{1}</think> \boxed{2}", "2"),
        (["after_think", "boxed"], r"\boxed{1}", None),
    ],
)
def test_views(spec, text, expected):
    view = resolve_view(spec)
    assert view(text) == expected
    assert pickle.loads(pickle.dumps(view))(text) == expected


def test_nested_boxed():
    assert last_boxed(r"\boxed{\boxed{3}}") == "3"  # the last \boxed to start wins, as in math-verify
    assert last_boxed(r"\boxed {x}") == "x"


@pytest.mark.parametrize(
    "spec,match",
    [
        ("nope", "Unknown view 'nope'"),
        ("boxd", "Did you mean 'boxed'"),
        ({"marker": "x"}, "needs 'view: <name>'"),
        ({"view": "regex", "pattern": "("}, "Invalid regular expression"),
        ({"view": "regex", "pattern": "a", "group": 2}, "group: 2 does not exist"),
        ({"view": "after"}, "view 'after': marker: missing"),
        ({"view": "after", "marker": "x", "colour": 1}, "colour"),
        (3, "expected a view name or a mapping"),
    ],
)
def test_view_errors(spec, match):
    with pytest.raises((ConfigError, UnknownNameError), match=match):
        resolve_view(spec)


def test_regex_view_times_out_on_catastrophic_pattern():
    view = resolve_view({"view": "regex", "pattern": r"(a|aa)+$", "group": 0, "regex_timeout": 0.05})
    with pytest.warns(RuntimeWarning, match="took over"):
        assert view("a" * 60 + "b") is None


def nested_views(depth: int) -> Any:
    value: Any = "boxed"
    for _ in range(depth):
        value = [value]
    return value


BAD_INPUTS = [
    *[
        Row(
            f"regex-view-regex_timeout-{v}",
            lambda c, v=v: get_view("regex", pattern="(a)", regex_timeout=v),
            raises(ConfigError, r"view 'regex': regex_timeout: "),
        )
        for v in (-1, NAN, 0, INF, 1e308)
    ],
    Row(
        "regex-view-timeout-in-a-reward-spec",
        lambda c: compose(
            rewards_spec(
                {
                    "e": {
                        "use": "exact_match",
                        "completion_view": {"view": "regex", "pattern": "(a)", "regex_timeout": -1},
                    }
                }
            )
        ),
        raises(ConfigError, r"rewards\.e \(reward 'exact_match'\)\.completion_view \(view 'regex'\): regex_timeout"),
    ),
    Row(
        "regex-view-named-group-missing",
        lambda c: get_view("regex", pattern="(?P<x>a)", group="y"),
        raises(ConfigError, r"group: 'y' is not a named group .*named: x"),
    ),
    Row(
        "regex-view-group-number-missing",
        lambda c: get_view("regex", pattern="(a)", group=2),
        raises(ConfigError, r"group: 2 does not exist .*1 groups"),
    ),
    Row("regex-view-group-true", lambda c: get_view("regex", pattern="(a)", group=True), raises(ConfigError, "group")),
    Row(
        "view-chain-with-none",
        lambda c: get_view(["boxed", None]),
        raises(
            ConfigError,
            r"view\[1\]: expected a "
            "view name",
        ),
    ),
    Row(
        "view-chain-nested-3000-deep",
        lambda c: get_view(nested_views(3000)),
        raises(ConfigError, r"nested more than 8 deep"),
    ),
]


@pytest.mark.parametrize("row", BAD_INPUTS, ids=row_ids(BAD_INPUTS))
def test_bad_input(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run_row(row, tmp_path, monkeypatch, capsys)


VIEW_SPECS = [
    "full",
    "boxed",
    "last_number",
    "after_think",
    {"view": "after", "marker": "#"},
    {"view": "before", "marker": "."},
    {"view": "regex", "pattern": r"(\d+)", "occurrence": "last"},
    ["after_think", "boxed"],
]


VIEWS = [resolve_view(spec) for spec in VIEW_SPECS]


@FUZZ_SETTINGS
@given(ANY_TEXT)
def test_views_return_a_substring_or_none(text):
    for view in VIEWS:
        out = view(text)
        # last_number spells a Unicode minus as '-'; every other view returns text it found.
        assert out is None or out.strip() in text or out.strip() in text.replace("\u2212", "-")


def finishes(call, seconds: float = 60.0):
    """call()'s result; fails (instead of hanging the suite) when it has not returned after `seconds`.

    A hang guard, not a speed goal (those live in benchmarks/): these inputs take well under a second.
    """
    box: dict = {}

    def run():
        try:
            box["value"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)  # daemon: a stuck call cannot keep pytest from exiting
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s: a hang (quadratic or worse) on hostile input"
    if "error" in box:
        raise box["error"]
    return box["value"]


# (hostile text, what the last_number view finds in it)
HOSTILE = [
    ("\\boxed{" * 20_000, None),
    ("{" * 50_000 + "}" * 49_999, None),
    ("1" * 100_000 + "e" * 10, "1" * 100_000),
    ("-" * 100_000 + "1", "-1"),
    ("1/" * 50_000, "1/1"),
    ("\\frac{" * 30_000, None),
]


@pytest.mark.parametrize(
    "text, number",
    HOSTILE,
    ids=["open-boxed", "unbalanced-braces", "long-number", "many-minus", "many-slashes", "open-frac"],
)
def test_hostile_inputs_finish(text, number):
    outputs = finishes(lambda: [view(text) for view in VIEWS])
    for spec, out in zip(VIEW_SPECS, outputs):
        assert out is None or out.strip() in text, spec  # a view returns a part of the text or nothing
    assert outputs[VIEW_SPECS.index("full")] == text
    assert outputs[VIEW_SPECS.index("boxed")] is None  # every \\boxed{ here is unclosed or absent
    assert outputs[VIEW_SPECS.index("last_number")] == number
    value = finishes(lambda: extract_answer(text))
    assert (value is None) == (number is None)
    if value is not None:
        assert numbers_equal(value, value)


PATTERNS = st.one_of(
    st.sampled_from(
        [
            r"(\d+)",
            r"(?P<x>a+)",
            r"(a+)+$",
            r"(a|aa)*b",
            "(",
            "a{99999999999}",
            "(?P<x>a)(?P=x)",
            r"\p{L}+",
            "(?i)A",
            "",
            "(a)" * 200,
            "[",
            r"(?<=a+)b",
        ]
    ),
    st.text(alphabet=list("ab()+*?|[]{}\\.^$<>P=0123456789,-"), max_size=16),
)


TIMEOUTS = st.sampled_from([0.001, 0.01, 0.05, -1, 0, math.nan, math.inf, 1e308, True, "0.1", None])


PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "pattern": PATTERNS,
        "group": st.sampled_from([0, 1, 2, -1, "x", "", True, None, 1.0]),
        "occurrence": st.sampled_from(["first", "last", "middle", 1]),
        "regex_timeout": TIMEOUTS,
        "flags": st.sampled_from([[], ["IGNORECASE"], ["dotall", "MULTILINE"], ["BOGUS"], "DOTALL", [5]]),
        "marker": st.one_of(st.text(max_size=4), st.sampled_from([None, 5])),
        "strip": st.sampled_from([True, False, 1, "yes"]),
        "bogus": st.just(1),
    },
)


NAMES = st.sampled_from(
    ["full", "boxed", "last_number", "regex", "after", "before", "after_think", "nope", "", "rewardkit:boxed", "a:b:c"]
)


ONE_VIEW = st.one_of(
    NAMES,
    st.builds(lambda name, params: {"view": name, **params}, NAMES, PARAMS),
    st.sampled_from([None, 5, 1.5, {"pattern": "a"}, {"view": None}, {"view": ["boxed"]}]),
)


CHAINS = st.recursive(ONE_VIEW, lambda ch: st.lists(ch, max_size=6), max_leaves=20)


TEXTS = st.one_of(st.text(max_size=200), st.sampled_from(["a" * 60 + "!", r"\boxed{" * 50 + "1", "x</think>2 3"]))


@FUZZ_FAST
@given(CHAINS, st.lists(TEXTS, min_size=1, max_size=3))
def test_view_chain_builds_and_runs_or_raises_a_rewardkit_error(spec, texts):
    view = only_rewardkit_errors(lambda: get_view(spec))
    if view is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a regex over its time budget warns and finds nothing
        for text in texts:
            out = view(text)
            assert out is None or isinstance(out, str)


@FUZZ_FAST
@given(
    CHAINS,
    st.sampled_from(["exact_match", "math_exact_match", "rouge1", "format_regex", "brevity"]),
    st.fixed_dictionaries(
        {},
        optional={
            "max_length": st.sampled_from([10, 0, True, "5", 5.0]),
            "pattern": PATTERNS,
            "regex_timeout": TIMEOUTS,
            "timeout": st.sampled_from([0, -1, math.inf, math.nan, True, "1"]),
            "weight": st.sampled_from([1, 0.5, None, -1, math.inf, True, "2"]),
            "missing": st.sampled_from(["zero", "none", None]),
        },
    ),
)
def test_a_reward_spec_with_any_view_chain_composes_and_scores_or_raises(chain, use, params):
    def run():
        composed = compose({"rewards": {"r": {"use": use, "completion_view": chain, **params}}})
        return composed(completions=["a \\boxed{1}", "aaaa" * 10 + "!"], answer=["1", None])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = only_rewardkit_errors(run)
    assert out is None or all(v is None or math.isfinite(v) for v in out)
