"""The official answer/reason split, on every gold shape, plus hypothesis properties."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewardkit
from rewardkit_korean.split import AnswerView, ReasonView, split_answer_reason


@pytest.mark.parametrize(
    ("text", "answer", "reason"),
    [
        # 선택형, plain
        (
            "\"왠지 오늘은 기분이 좋다.\"가 옳다. '왠지'는 '왜인지'가 줄어든 말이다.",
            '"왠지 오늘은 기분이 좋다."가 옳다',
            "'왠지'는 '왜인지'가 줄어든 말이다.",
        ),
        # 교정형 with nested quotes
        (
            '"그는 "같이 가자."라고 말했다."가 옳다. 조사 \'라고\'는 앞말에 붙여 쓴다.',
            '"그는 "같이 가자."라고 말했다."가 옳다',
            "조사 '라고'는 앞말에 붙여 쓴다.",
        ),
        # a space before the particle
        (
            "\"며칠 뒤에 다시 만나자.\" 가 옳다. '며칠'로 적는다.",
            '"며칠 뒤에 다시 만나자." 가 옳다',
            "'며칠'로 적는다.",
        ),
        # prose alternatives
        (
            '"불이 꺼져 간다."와 같이 쓰거나 "불이 꺼져간다."가 옳다. 붙여 씀도 허용한다.',
            '"불이 꺼져 간다."와 같이 쓰거나 "불이 꺼져간다."가 옳다',
            "붙여 씀도 허용한다.",
        ),
        # 이 옳다
        ("\"희한한 일\"이 옳다. '희한하다'가 표준어이다.", '"희한한 일"이 옳다', "'희한하다'가 표준어이다."),
        # missing reason
        ('"우리는 내일 떠날 거예요."가 옳다.', '"우리는 내일 떠날 거예요."가 옳다', ""),
        # no marker: everything is the answer
        ("잘 모르겠습니다.", "잘 모르겠습니다.", ""),
        ("", "", ""),
        # 가 옳다 is searched first over the whole text, even when 이 옳다 comes earlier
        ('"그렇게 하는 것이 옳다"가 옳다. 이유', '"그렇게 하는 것이 옳다"가 옳다', "이유"),
        # leading '.', ',' and spaces go; other characters stay
        ('"A"가 옳다 ., , 이유', '"A"가 옳다', "이유"),
        # strip() runs first, so a newline after the period survives lstrip('., ') (as in the official code)
        ('"A"가 옳다.\n이유\n', '"A"가 옳다', "\n이유"),
        ('"A"가 옳다. #이유', '"A"가 옳다', "#이유"),
        ('"A"가 옳다 .\n이유', '"A"가 옳다', "\n이유"),
    ],
)
def test_split_examples(text: str, answer: str, reason: str) -> None:
    assert split_answer_reason(text) == (answer, reason)


def test_views() -> None:
    text = "\"희한한 일\"이 옳다. '희한하다'가 표준어이다."
    assert AnswerView()(text) == '"희한한 일"이 옳다'
    assert ReasonView()(text) == "'희한하다'가 표준어이다."
    assert ReasonView()('"희한한 일"이 옳다.') is None  # absent, as the official scorer treats it
    assert AnswerView()("모르겠다") == "모르겠다"


def test_views_reject_parameters() -> None:
    with pytest.raises(rewardkit.ConfigError, match="marker: unknown key"):
        AnswerView(marker="x")


def test_split_rejects_non_string() -> None:
    with pytest.raises(TypeError, match="expects a str"):
        split_answer_reason({"answer": "x"})  # type: ignore[arg-type]


PIECES = st.sampled_from(
    [
        "가 옳다",
        "이 옳다",
        "가",
        "이",
        " 옳다",
        "옳다",
        '"',
        "'",
        ".",
        ",",
        " ",
        "\n",
        "\t",
        "왠지",
        "이유",
        "abc",
        "。",
        "\u3000",
    ]
)
TEXTS = st.lists(st.one_of(PIECES, st.text(alphabet=string.printable + "가나다옳이", max_size=5)), max_size=30).map(
    "".join
)


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_split_properties(text: str) -> None:
    answer, reason = split_answer_reason(text)  # never raises
    assert text.startswith(answer)
    rest = text[len(answer) :]
    body = rest.rstrip()  # what follows the reason is whitespace only
    assert body.endswith(reason)
    gap = body[: len(body) - len(reason)]
    assert all(ch.isspace() or ch in ".," for ch in gap), (text, gap)  # only the stripped prefix is lost
    assert not reason.startswith((".", ",", " "))
    assert reason == reason.rstrip()
    if "가 옳다" not in text and "이 옳다" not in text:
        assert (answer, reason) == (text, "")
    else:
        assert answer.endswith(("가 옳다", "이 옳다"))


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_split_never_raises_on_any_unicode(text: str) -> None:
    answer, reason = split_answer_reason(text)
    assert isinstance(answer, str) and isinstance(reason, str)
