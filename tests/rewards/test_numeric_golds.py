"""Golds that are not strings: each type is compared as the text the user wrote (README "Golds that are not strings")."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from rewardkit import get_reward
from rewardkit.core.errors import DataError
from rewardkit.rewards.inputs import float_text
from tests.conftest import INF, NAN, Row, em, raises, returns, row_ids, run_row

EM = get_reward("exact_match")
MATH = get_reward("math_exact_match")


@pytest.mark.parametrize("gold", [np.float32(0.1), np.float16(0.1), np.float64(0.1), 0.1, [np.float32(0.1)]])
@pytest.mark.parametrize("reward", [EM, MATH], ids=["exact_match", "math_exact_match"])
def test_float_golds_match_the_number_as_written(reward, gold):
    assert reward(completions=["0.1", "0.2"], answer=[gold, gold]) == [1.0, 0.0]


def test_float32_shortest_text_at_its_own_precision():
    # Every float32 whose shortest text has few digits reads back as that text, never as its float64 widening.
    values = np.float32([0.1, 0.3, 1.1, 2.675, 1e-7, 3.4e38, 123456.7])
    assert [float_text(v) for v in values] == ["0.1", "0.3", "1.1", "2.675", "1e-07", "3.4e+38", "123456.7"]
    for v in values:
        assert np.float32(float_text(v)) == v  # round-trips at float32


def test_float64_widening_of_a_float32_stays_float64_text():
    # The widened value is a different float64 number: written as Python writes it (documented limitation).
    widened = float(np.float32(0.1))
    assert EM(completions=["0.1", repr(widened)], answer=[widened, widened]) == [0.0, 1.0]


@pytest.mark.parametrize(
    "gold, completion, em, math",
    [
        (3, "3", 1.0, 1.0),
        (np.int64(3), "3", 1.0, 1.0),
        (3.0, "3", 0.0, 1.0),
        (3.0, "3.0", 1.0, 1.0),
        (Fraction(1, 3), "1/3", 1.0, 1.0),
        (Decimal("0.10"), "0.1", 0.0, 1.0),
    ],
)
def test_numbers(gold, completion, em, math):
    assert EM(completions=[completion], answer=[gold]) == [em]
    assert MATH(completions=[completion], answer=[gold]) == [math]


@pytest.mark.parametrize("gold", [None, float("nan"), np.float32("nan"), Decimal("NaN"), [None, float("nan")]])
def test_missing_golds_are_not_applicable(gold):
    assert EM(completions=["x"], answer=[gold]) == [None]
    assert MATH(completions=["1"], answer=[gold]) == [None]


def test_chat_message_gold_is_its_content_and_other_dicts_and_bools_are_refused():
    assert EM(completions=["4"], answer=[{"role": "assistant", "content": "4"}]) == [1.0]
    with pytest.raises(DataError, match="column 'answer', row 0.*got bool"):
        EM(completions=["True"], answer=[True])
    with pytest.raises(DataError, match="column 'answer', row 0.*got dict"):
        EM(completions=["4"], answer=[{"value": 4}])
    with pytest.raises(DataError, match="row 0: the number inf cannot be a reference"):
        MATH(completions=["1"], answer=[float("inf")])


BAD_INPUTS = [
    # 4. A NaN / missing reference is None in every reward, never the text "nan".
    Row("nan-reference-exact_match", em(completions=["nan", "nan"], answer=[NAN, None]), returns([None, None])),
    Row("nan-reference-numpy-float32", em(completions=["nan"], answer=[np.float32("nan")]), returns([None])),
    Row("nan-reference-in-a-list", em(completions=["nan"], answer=[[NAN, None]]), returns([None])),
    Row("nan-reference-rouge1", lambda c: get_reward("rouge1")(completions=["nan"], answer=[NAN]), returns([None])),
    Row(
        "nan-reference-plugin-reward",
        lambda c: (
            pytest.importorskip("rewardkit_korean"),
            get_reward("korean_qa_exact_match")(completions=["nan"], answer=[NAN]),
        )[1],
        returns([None]),
    ),
    Row("numpy-integer-reference-is-a-number", em(completions=["5"], answer=[np.int64(5)]), returns([1.0])),
    Row(
        "infinite-reference-is-an-error",
        em(completions=["inf"], answer=[INF]),
        raises(DataError, r"column 'answer', row 0: the number inf cannot be a reference"),
    ),
    Row(
        "huge-integer-reference-is-an-error",
        em(completions=["1"], answer=[10**5000]),
        raises(DataError, r"row 0: the number with \d+ bits cannot be a reference"),
    ),
]


@pytest.mark.parametrize("row", BAD_INPUTS, ids=row_ids(BAD_INPUTS))
def test_bad_input(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run_row(row, tmp_path, monkeypatch, capsys)
