"""Official and lenient exact match on answer parts."""

from __future__ import annotations

import pytest

from rewardkit_korean.exact_match import exact_match, normalize_answer
from rewardkit_korean.split import split_answer_reason


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ('"왠지 오늘은 기분이 좋다."가 옳다', '"왠지 오늘은 기분이 좋다."가 옳다', 1.0),
        # ASCII quotes (double and single) are removed on both sides, then both are stripped
        ("  '왠지 오늘은 기분이 좋다.'가 옳다 ", '"왠지 오늘은 기분이 좋다."가 옳다', 1.0),
        ("왠지 오늘은 기분이 좋다.가 옳다", '"왠지 오늘은 기분이 좋다."가 옳다', 1.0),
        ('"웬지 오늘은 기분이 좋다."가 옳다', '"왠지 오늘은 기분이 좋다."가 옳다', 0.0),
        # nested quotes disappear entirely
        ('"그는 "같이 가자."라고 말했다."가 옳다', '"그는 같이 가자.라고 말했다."가 옳다', 1.0),
        # the space before the particle is part of the answer: officially not equal
        ('"며칠 뒤에 다시 만나자."가 옳다', '"며칠 뒤에 다시 만나자." 가 옳다', 0.0),
        # '#' alternatives in the gold: any equal → 1
        ('"자장면을 먹었다."가 옳다', '"짜장면을 먹었다."가 옳다#"자장면을 먹었다."가 옳다', 1.0),
        ('"짜장면을 먹었다."가 옳다', '"짜장면을 먹었다."가 옳다 # "자장면을 먹었다."가 옳다', 1.0),
        ('"국수를 먹었다."가 옳다', '"짜장면을 먹었다."가 옳다#"자장면을 먹었다."가 옳다', 0.0),
        # curly quotes and inner whitespace runs are NOT normalised officially
        ("“왠지 좋다.”가 옳다", '"왠지 좋다."가 옳다', 0.0),
        ('"왠지  좋다."가 옳다', '"왠지 좋다."가 옳다', 0.0),
        ("", '"왠지 좋다."가 옳다', 0.0),
    ],
)
def test_official(prediction: str, gold: str, expected: float) -> None:
    assert exact_match(prediction, gold) == expected


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("“왠지 좋다.”가 옳다", '"왠지 좋다."가 옳다', 1.0),
        ("‘왠지’ 좋다.가  옳다", '"왠지 좋다."가 옳다', 1.0),
        ('"왠지\n좋다."가 옳다', '"왠지 좋다."가 옳다', 1.0),
        ('"웬지 좋다."가 옳다', '"왠지 좋다."가 옳다', 0.0),
        ('"A"가 옳다', '"B"가 옳다#“A”가  옳다', 1.0),
    ],
)
def test_lenient(prediction: str, gold: str, expected: float) -> None:
    assert exact_match(prediction, gold, mode="lenient") == expected


def test_on_split_answers(sample_items: list[dict]) -> None:
    for item in sample_items:
        answer, _ = split_answer_reason(item["output"]["answer"])
        assert exact_match(answer, answer) == 1.0


def test_bad_mode_and_types() -> None:
    with pytest.raises(ValueError, match="'official' or 'lenient'"):
        normalize_answer("x", mode="loose")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="gold must be a str"):
        exact_match("x", None)  # type: ignore[arg-type]
