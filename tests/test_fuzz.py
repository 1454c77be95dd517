"""Property tests: views, the number parser and rewards never raise on arbitrary text and stay in range."""

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardkit import get_reward
from rewardkit import get_view as resolve_view
from rewardkit.text.numeric import extract_answer, last_number_text, numbers_equal, parse_number

MATHY = st.text(alphabet=st.sampled_from(list("0123456789-+.,/ eE$#{}\\boxedfrac ab\u2212")), max_size=60)
ANY = st.one_of(st.text(max_size=80), MATHY)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

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


@SETTINGS
@given(ANY)
def test_views_return_a_substring_or_none(text):
    for view in VIEWS:
        out = view(text)
        # last_number spells a Unicode minus as '-'; every other view returns text it found.
        assert out is None or out.strip() in text or out.strip() in text.replace("\u2212", "-")


@SETTINGS
@given(ANY)
def test_number_parser_total(text):
    value = extract_answer(text)
    token = last_number_text(text)
    if token is not None:
        assert token in text.replace("\u2212", "-")
        parsed = parse_number(token)
        if parsed is not None:
            assert numbers_equal(parsed, parsed)
    if value is not None:
        assert numbers_equal(value, value)


@SETTINGS
@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=1, max_value=10**6))
def test_equal_rationals_in_different_spellings(num, den):
    from fractions import Fraction

    frac = Fraction(num, den)
    as_frac = (
        f"\\frac{{{frac.numerator}}}{{{frac.denominator}}}"
        if frac.numerator >= 0
        else f"-\\frac{{{-frac.numerator}}}{{{frac.denominator}}}"
    )
    a, b = extract_answer(as_frac), extract_answer(f"{frac.numerator}/{frac.denominator}")
    assert a is not None and b is not None and numbers_equal(a, b)
    if frac.denominator == 1:
        c = extract_answer(f"{frac.numerator:,}.000")
        assert numbers_equal(a, c)


REWARDS = [
    get_reward("math_exact_match"),
    get_reward("exact_match", alternatives="#"),
    get_reward("brevity", max_length=50),
    get_reward("brevity", max_length=50, mode="soft_overlong", cache=10),
    get_reward("format_regex", pattern=r"^\d+$"),
    get_reward("math_exact_match", completion_view="boxed"),
]
RANGES = {"math_exact_match": (0, 1), "exact_match": (0, 1), "brevity": (-1, 1), "format_regex": (0, 1)}


@SETTINGS
@given(st.lists(st.tuples(ANY, st.one_of(st.none(), ANY)), min_size=1, max_size=5))
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
