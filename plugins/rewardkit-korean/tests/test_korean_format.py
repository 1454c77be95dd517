"""The format scanner: every gold shape accepted, malformed answers rejected with a reason."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit_korean.format_check import format_error, is_well_formed

ACCEPTED = [
    # 선택형
    "\"왠지 오늘은 기분이 좋다.\"가 옳다. '왠지'는 '왜인지'가 줄어든 말이다.",
    # 교정형 with nested quotes (sentence-final and mid-sentence, and an inner quote closing the sentence)
    '"그는 "같이 가자."라고 말했다."가 옳다. 조사 \'라고\'는 앞말에 붙여 쓴다.',
    '"그는 "왜?"라고 물었다"가 옳다. 직접 인용에는 큰따옴표를 쓴다.',
    '"그가 "안녕""이 옳다. 인용한 말 뒤에는 마침표를 쓰지 않을 수 있다.',
    # a space before the particle
    "\"며칠 뒤에 다시 만나자.\" 가 옳다. '며칠'로 적는다.",
    # prose alternatives
    '"불이 꺼져 간다."와 같이 쓰거나 "불이 꺼져간다."가 옳다. 붙여 씀도 허용한다.',
    '"자장면"과 "짜장면"이 옳다. 둘 다 표준어이다.',
    # 이 옳다
    "\"희한한 일\"이 옳다. '희한하다'가 표준어이다.",
    "\"누구나 참여할 수 있음\"이 옳다. '수'는 의존 명사이므로 앞말과 띄어 쓴다.",
    # ',' as the separator, a newline before the reason, leading whitespace, Latin letters in the reason
    '"A"가 옳다, 이유가 있다.',
    "\"케이크\"가 옳다.\n영어 cake는 '케이크'로 적는다.",
    '  "왠지"가 옳다. 이유',
    # a marker inside the quote is fine when the official split still finds the outer one first
    "\"그렇게 하는 것이 옳다\"가 옳다. '옳다'는 형용사이다.",
    # the corrected sentence holds quotes of its own, paired or not: the answer ends at the LAST '"'
    '"\'로그인\'이라는 창이 뜨셨나요?" 사회자가 말했다."가 옳다. 물음표 뒤에는 마침표를 쓰지 않는다.',
    '"그는 "왜?"라고 물었다."가 옳다. 이유',
    '"\'확인\'을 누르셨나요?" 사회자가 말했다."이 옳다, 직접 인용한 문장 뒤에는 큰따옴표를 쓴다.',
    # no pairing is attempted any more, so these (rejected by the old pairing scanner) are content too
    '"그는 "왜?라고 물었다"가 옳다. 이유',
    '"A""B"가 옳다. 이유',
    '"A""가 옳다. 이유',
]

REJECTED = {
    "왠지 오늘은 기분이 좋다.": "no '가 옳다'",
    '"왠지 오늘은 기분이 좋다."가 옳다.': "empty reason",
    '"왠지 오늘은 기분이 좋다."가 옳다': "empty reason",
    '"왠지 오늘은 기분이 좋다."가 옳다. ...!': "no Hangul",
    '"왠지 오늘은 기분이 좋다.가 옳다. 이유': "no closing quote",
    "왠지 오늘은 기분이 좋다가 옳다. 이유": "not quoted",
    '정답: "왠지"가 옳다. 이유': "not quoted",
    '"왠지"라는 표현이 옳다. 이유': "between the closing quote and the particle",
    '""가 옳다. 이유': "empty quotes",
    '"  "가 옳다. 이유': "empty quotes",
    '"\'"가 옳다. 이유': "empty quotes",  # the official EM removes the quotes and leaves nothing
    '"가 옳다. 이유': "no closing quote",
    "“왠지 좋다.”가 옳다. 이유": "curly quotes",
    '"왠지 좋다.”가 옳다. 이유': "curly quotes",
    '"왠지"가 옳다고 본다. 이유': "followed by '.' or ','",
    # the official split cuts inside the quotes at the first '가 옳다'
    '"그가 옳다고 했다"가 옳다. 이유': "official split cuts",
}


@pytest.mark.parametrize("text", ACCEPTED)
def test_accepts_gold_shapes(text: str) -> None:
    assert format_error(text) is None
    assert is_well_formed(text)


@pytest.mark.parametrize(("text", "why"), list(REJECTED.items()))
def test_rejects_malformed(text: str, why: str) -> None:
    error = format_error(text)
    assert error is not None and why in error, error


def test_every_sample_gold_with_a_reason_is_accepted(sample_items: list[dict]) -> None:
    for item in sample_items:
        answer = item["output"]["answer"]
        assert is_well_formed(answer) == (item["id"] != "9"), (item["id"], format_error(answer))


QUOTED_SENTENCE_GOLDS = [
    '"\'로그인\'이라는 창이 뜨셨나요?" 사회자가 말했다."가 옳다. 이유',
    '"그는 "왜?"라고 물었다."가 옳다. 이유',
    '"\'확인\'을 누르셨나요?" 사회자가 말했다."이 옳다, 이유',
]


@pytest.mark.parametrize("text", QUOTED_SENTENCE_GOLDS)
def test_answer_ends_at_the_last_quote_before_the_particle(text: str) -> None:
    # The pairing scanner this replaced rejected these: the corrected sentence ends with, or holds, a quote.
    assert format_error(text) is None


def test_format_reward_scores_every_gold_with_a_reason_one(sample_items: list[dict]) -> None:
    # Through the registered reward, not just the scanner. The only sample gold it rejects has no reason at
    # all (item 9 ends at '가 옳다.'), which the format rightly calls malformed.
    rewardkit = pytest.importorskip("rewardkit")  # like test_korean_plugin: the registry needs the core
    from rewardkit_korean.split import split_answer_reason

    golds = [item["output"]["answer"] for item in sample_items]
    with_reason = [gold for gold in golds if split_answer_reason(gold)[1]]
    assert len(with_reason) == len(golds) - 1
    fmt = rewardkit.get_reward("korean_qa_format")
    assert fmt(completions=with_reason + QUOTED_SENTENCE_GOLDS) == [1.0] * (len(with_reason) + 3)


def test_blog_regex_rejects_golds_the_scanner_accepts() -> None:
    # The entrant's regex ^"[^"]+"[이가] 옳다 is the reason this scanner exists.
    import re

    blog = re.compile(r'^"[^"]+"[이가] 옳다')
    assert not blog.match(ACCEPTED[1]) and not blog.match(ACCEPTED[4]) and not blog.match(ACCEPTED[5])


@pytest.mark.parametrize(
    "text",
    [
        '"' * 200_000 + "가 옳다. 이유",
        '"a ' * 100_000 + "가 옳다. 이유",
        "가" * 200_000 + " 옳다. " + "이" * 100_000,
    ],
    ids=["quotes", "openers", "particles"],
)
def test_linear_time_on_hostile_input(text: str) -> None:
    start = time.perf_counter()
    format_error(text)
    assert time.perf_counter() - start < 2.0


def test_hostile_quotes_complete() -> None:
    # Time-insensitive twin of the test above: a backtracking scanner would never return here.
    assert format_error('"' * 200_000 + "가 옳다. x") == format_error('""가 옳다. x')
    assert format_error('"' + 'a"' * 100_000 + "가 옳다. x") is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(['"', "가 옳다", "이 옳다", ".", ",", " ", "왠지", "와 같이 쓰거나 ", "\n", "“"]), max_size=25
    ).map("".join)
)
def test_never_raises_and_accepted_means_scorable(text: str) -> None:
    if is_well_formed(text):
        from rewardkit_korean.split import split_answer_reason

        answer, reason = split_answer_reason(text)
        assert reason and answer.lstrip().startswith('"')
