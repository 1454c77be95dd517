import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewardkit.text.numeric import extract_answer, last_number_text, numbers_equal, parse_number
from tests.conftest import ANY_TEXT, FUZZ_SETTINGS


def eq(a: str, b: str) -> bool:
    x, y = extract_answer(a), extract_answer(b)
    return x is not None and y is not None and numbers_equal(x, y)


@pytest.mark.parametrize(
    "a,b",
    [
        ("1,234", "1234"),
        ("+7", "7"),
        ("7.0", "7"),
        ("7.000", "+7"),
        (".5", "0.5"),
        ("0.5", "1/2"),
        ("1/2", r"\frac{1}{2}"),
        (r"\dfrac{1}{2}", ".5"),
        ("$18", "18"),
        ("-3", "-3.0"),
        ("#### 18", "18"),
        (r"\boxed{18}", "18"),
        (r"\frac{63}{400}", "0.1575"),
        ("1e3", "1000"),
        ("2.50", "5/2"),
        (r"-\frac{3}{4}", "-0.75"),
        ("\u22125", "-5"),
        ("0", "-0"),
        ("1,000,000", "1e6"),
    ],
)
def test_equal_values(a, b):
    assert eq(a, b)


@pytest.mark.parametrize(
    "a,b",
    [
        ("18", "19"),
        ("1/3", "0.33"),
        ("-3", "3"),
        ("1,234", "1.234"),
        ("0.1", "0.01"),
        ("1e3", "100"),
    ],
)
def test_unequal_values(a, b):
    assert not eq(a, b)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("The answer is 42.", "42"),
        ("5-3", "3"),
        ("from 3 to -4", "-4"),
        ("x = 1,234 apples", "1,234"),
        ("1,2,3", "3"),
        ("no digits", None),
        ("v2 of it", None),
        ("pi is 3.14159", "3.14159"),
    ],
)
def test_last_number_text(text, expected):
    assert last_number_text(text) == expected


def test_boxed_wins_over_later_numbers():
    assert eq(r"\boxed{7} (checked with 3 and 4)", "7")
    assert extract_answer(r"\boxed{no number here} 5") is None


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1/0", r"\frac{1}{0}", "", "\\boxed{", "1e9999999999"])
def test_unparseable_has_no_value(bad):
    assert extract_answer(bad) is None


def test_huge_numbers_are_exact_and_fast():
    big = "9" * 100_000
    start = time.perf_counter()
    assert eq("The answer is " + big, big + ".000")
    assert not eq("The answer is " + big, big[:-1] + "8")
    assert time.perf_counter() - start < 1.0  # generous bound: a quadratic or int() path would take far longer or raise
    assert parse_number("1e999") == (1, "1", 999)


def test_hostile_braces_are_linear():
    start = time.perf_counter()
    assert extract_answer("\\boxed{" * 50_000) is None
    assert extract_answer("\\boxed{\\boxed{12}}") == (1, "12", 0)
    assert time.perf_counter() - start < 2.0


@FUZZ_SETTINGS
@given(ANY_TEXT)
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


@FUZZ_SETTINGS
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
