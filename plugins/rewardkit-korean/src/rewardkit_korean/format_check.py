"""Format check for competition answers: a hand-written linear scanner (no regex, no backtracking).

The check runs on the OFFICIAL split (`split_answer_reason`), so "well formed" means "the official scorer
reads the answer and the reason the way the writer meant". Accepted grammar::

    text       := WS* head SP* particle " 옳다" sep reason
    head       := '"' content '"'      from the FIRST '"' to the LAST '"' before the particle
    content    := any text, quotes included (paired or not), not blank once ASCII '"' and "'" are removed
    particle   := "가" | "이"
    sep        := "." | ","          (right after 옳다)
    reason     := the official reason: not empty, with at least one Hangul syllable, Latin letter or digit
    WS         := any whitespace;  SP := ASCII space

No quote pairing: golds quote corrected sentences that hold quotes of their own, and some of those do not pair
up (``"'…'라는 창이 뜨셨나요?" 사회자가 말했다."가 옳다.``), so the answer simply ends at the last ``"``.
Prose alternatives (``"A"와 같이 쓰거나 "B"가 옳다.``) and nested quotes are content like any other.

Accepted, e.g.: ``"A"가 옳다. …``, ``"A"이 옳다. …``, ``"A" 가 옳다. …``, ``"그는 "왜?"라고 물었다"가 옳다. …``,
``"A"와 같이 쓰거나 "B"가 옳다. …``, ``"…뜨셨나요?" 사회자가 말했다."이 옳다, …``.
Rejected: no marker; empty reason; text before the first quote or between the last quote and the particle
(answer not quoted); no closing quote (which is also what a quoted sentence containing the marker looks like:
the official split cuts inside the quotes); blank content; curly quotes as the outer delimiter (official EM
only removes ASCII quotes); a marker not followed by "." or ",".
"""

from __future__ import annotations

from rewardkit_korean.split import find_marker, split_answer_reason

_CURLY = "\u201c\u201d"


def _is_word_char(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ("0" <= ch <= "9") or ("가" <= ch <= "힣")


def _check_head(head: str) -> str | None:
    """Return why `head` (the text before the particle, spaces trimmed) is not `'"' content '"'`, or None."""
    if not head:
        return "nothing before the particle: the answer must be a quoted sentence"
    if head[0] in _CURLY or head[-1] in _CURLY:
        return 'the answer is in curly quotes; use ASCII " (the official EM only removes ASCII quotes)'
    if head[0] != '"':
        return 'the answer is not quoted: it must start with "'
    if len(head) == 1 or head[-1] != '"':
        if head.count('"') == 1:
            return (
                "no closing quote before the particle (or the quoted sentence contains the marker, "
                "where the official split cuts)"
            )
        return 'text between the closing quote and the particle: the answer must end with "'
    # Blank means "empty after the official EM normalization" (ASCII quotes removed, then stripped).
    if not any(not ch.isspace() and ch not in "\"'" for ch in head[1:-1]):
        return "empty quotes: nothing but spaces and quotes between the first and the last quote"
    return None


def format_error(text: str) -> str | None:
    """Return why `text` is not a well-formed competition answer, or None when it is.

    Args:
        text: a completion or gold answer.

    >>> format_error('"왠지 기분이 좋다."가 옳다. \\'왠지\\'는 \\'왜인지\\'가 줄어든 말이다.') is None
    True
    >>> format_error('"왠지 기분이 좋다."가 옳다.')
    'empty reason after the marker'
    """
    if not isinstance(text, str):
        raise TypeError(f"format_error expects a str, got {type(text).__name__}.")
    found = find_marker(text)
    if found is None:
        return "no '가 옳다' or '이 옳다' marker"
    index, marker = found
    head = text[:index].lstrip().rstrip(" ")
    problem = _check_head(head)
    if problem is not None:
        return problem
    reason = split_answer_reason(text)[1]
    if not reason:
        return "empty reason after the marker"
    end = index + len(marker)
    if text[end] not in ".,":  # a non-empty reason guarantees text[end] exists
        return "the marker must be followed by '.' or ',' and then the reason"
    if not any(_is_word_char(ch) for ch in reason):
        return "the reason has no Hangul, Latin letter or digit"
    return None


def is_well_formed(text: str) -> bool:
    """Return True when `text` follows the grammar in this module's docstring.

    >>> is_well_formed('"A" 가 옳다. 이유')
    True
    """
    return format_error(text) is None
