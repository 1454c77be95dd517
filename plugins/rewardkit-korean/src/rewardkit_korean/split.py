"""The official answer/reason split of the 2025 Korean grammar-QA competition, and the views built on it.

Rule (kept byte-for-byte with the official scorer):

1. Find the first ``가 옳다`` in the text; only when there is none, the first ``이 옳다``.
   (``가 옳다`` wins even when an ``이 옳다`` comes earlier: ``"…것이 옳다"가 옳다`` splits at the end.)
2. The answer is the text up to and including that marker.
3. The reason is the rest, ``str.strip()``-ed, then with leading ``.``, ``,`` and ASCII spaces removed
   (``lstrip('., ')``); so a reason can still start with a newline that followed a period.
4. No marker: the whole text is the answer and the reason is empty.

>>> split_answer_reason('"왠지 기분이 좋다."가 옳다. \\'왠지\\'는 \\'왜인지\\'가 줄어든 말이다.')
('"왠지 기분이 좋다."가 옳다', "'왠지'는 '왜인지'가 줄어든 말이다.")
"""

from __future__ import annotations

from rewardkit import View

MARKERS: tuple[str, ...] = ("가 옳다", "이 옳다")


def find_marker(text: str) -> tuple[int, str] | None:
    """Return (index, marker) of the marker the official split uses, or None."""
    for marker in MARKERS:
        index = text.find(marker)
        if index >= 0:
            return index, marker
    return None


def split_answer_reason(text: str) -> tuple[str, str]:
    """Split a competition answer into (answer, reason) exactly like the official scorer.

    Args:
        text: a gold answer or a model completion.

    >>> split_answer_reason('"희한한 일"이 옳다.')
    ('"희한한 일"이 옳다', '')
    >>> split_answer_reason("옳은 표현을 모르겠다.")
    ('옳은 표현을 모르겠다.', '')
    """
    if not isinstance(text, str):
        raise TypeError(
            f"split_answer_reason expects a str, got {type(text).__name__}. "
            "Hint: pass the 'answer' string of the item's 'output', not the item itself."
        )
    found = find_marker(text)
    if found is None:
        return text, ""
    end = found[0] + len(found[1])
    return text[:end], text[end:].strip().lstrip("., ")


class _SplitView(View):
    """A view over the official split; it takes no parameters (checked by rewardkit's validator)."""


class AnswerView(_SplitView):
    """Korean grammar-QA: the answer part of the official split, up to 가/이 옳다 (the whole text when no marker)."""

    name = "answer"

    def __call__(self, text: str) -> str | None:
        return split_answer_reason(text)[0]


class ReasonView(_SplitView):
    """Korean grammar-QA: the reason after 가/이 옳다 by the official split; None when empty (officially skipped)."""

    name = "reason"

    def __call__(self, text: str) -> str | None:
        return split_answer_reason(text)[1] or None
