"""Exact match of the answer part: the official rule, and a lenient variant for training signal.

Official: remove every ASCII ``"`` and ``'``, strip; the gold may hold alternatives separated by ``#``;
the prediction scores 1 when it equals any alternative (each alternative normalised the same way).

Lenient (not the competition's rule; use it only for a denser training signal): additionally removes the
curly quotes ``“ ” ‘ ’`` and collapses every run of whitespace to one space.
"""

from __future__ import annotations

from typing import Literal

Mode = Literal["official", "lenient"]
_OFFICIAL_DROP = str.maketrans("", "", "\"'")
_LENIENT_DROP = str.maketrans("", "", "\"'\u201c\u201d\u2018\u2019")


def normalize_answer(text: str, mode: Mode = "official") -> str:
    """Normalise an answer part for comparison.

    >>> normalize_answer(' "왠지 좋다."가 옳다 ')
    '왠지 좋다.가 옳다'
    >>> normalize_answer('“왠지  좋다.”가 옳다', mode="lenient")
    '왠지 좋다.가 옳다'
    """
    if mode == "official":
        return text.translate(_OFFICIAL_DROP).strip()
    if mode == "lenient":
        return " ".join(text.translate(_LENIENT_DROP).split())
    raise ValueError(f"Unknown exact-match mode {mode!r}. Hint: use mode 'official' or 'lenient'.")


def exact_match(prediction: str, gold: str, mode: Mode = "official") -> float:
    """Return 1.0 when the prediction's answer part equals any '#'-separated alternative of the gold, else 0.0.

    Args:
        prediction: the answer part of the completion (see `split_answer_reason`).
        gold: the answer part of the gold; '#' separates acceptable alternatives.
        mode: "official" (the competition's rule) or "lenient" (also curly quotes and whitespace runs).

    >>> exact_match('"희한한 일"이 옳다', '"희한한 일"이 옳다')
    1.0
    >>> exact_match('"자장면"이 옳다', '"짜장면"이 옳다#"자장면"이 옳다')
    1.0
    """
    for name, value in (("prediction", prediction), ("gold", gold)):
        if not isinstance(value, str):
            raise TypeError(
                f"exact_match: {name} must be a str, got {type(value).__name__}. "
                "Hint: apply the 'answer' view first; it always returns a string."
            )
    pred = normalize_answer(prediction, mode)
    return 1.0 if any(pred == normalize_answer(alt, mode) for alt in gold.split("#")) else 0.0
