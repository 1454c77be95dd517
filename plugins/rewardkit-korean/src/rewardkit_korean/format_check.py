"""Format check for competition answers: a hand-written linear scanner (no regex, no backtracking).

The check runs on the OFFICIAL split (`split_answer_reason`), so "well formed" means "the official scorer
reads the answer and the reason the way the writer meant". Accepted grammar::

    text       := WS* head SP* particle " 옳다" sep reason
    head       := quoted (connector quoted)*
    quoted     := '"' content '"'      content is not blank; it may hold nested "…" pairs, which must balance
    connector  := text without '"' that is not blank     e.g. '와 같이 쓰거나 ', ', ', ' 또는 '
    particle   := "가" | "이"
    sep        := "." | ","          (right after 옳다)
    reason     := the official reason: not empty, with at least one Hangul syllable, Latin letter or digit
    WS         := any whitespace;  SP := ASCII space

Quote pairing: at depth 0 every ``"`` opens; inside quotes a ``"`` opens when it follows whitespace, an
opening bracket or another opening quote, and closes otherwise. So ``"그는 "왜?"라고 물었다"`` nests, and
``"A"와 같이 쓰거나 "B"`` is two quoted alternatives.

Accepted, e.g.: ``"A"가 옳다. …``, ``"A"이 옳다. …``, ``"A" 가 옳다. …``, ``"그는 "왜?"라고 물었다"가 옳다. …``,
``"A"와 같이 쓰거나 "B"가 옳다. …``.
Rejected: no marker; empty reason; unbalanced quotes; text before the first quote or between the last quote
and the particle (answer not quoted); empty quotes; curly quotes as the outer delimiter (official EM only
removes ASCII quotes); a marker not followed by "." or ","; a quoted sentence that itself contains the marker
the official split finds first (the split would cut inside the quotes).
"""

from __future__ import annotations

from .split import find_marker, split_answer_reason

_OPEN_BEFORE = set("([{<\u201c\u2018")


def _is_word_char(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ("0" <= ch <= "9") or ("가" <= ch <= "힣")


def _check_head(head: str) -> str | None:
    """Return why `head` is not `quoted (connector quoted)*`, or None."""
    if not head:
        return "nothing before the particle: the answer must be a quoted sentence"
    if head[0] != '"':
        if head[0] in "\u201c\u201d":
            return "the answer is in curly quotes; use ASCII \" (the official EM only removes ASCII quotes)"
        return "the answer is not quoted: it must start with \""
    depth = 0
    segment_start = 0  # start of the current top-level quoted content or connector
    prev_opens = False  # whether the previous character was an opening quote
    for i, ch in enumerate(head):
        if ch != '"':
            prev_opens = False
            continue
        prev = head[i - 1] if i else ""
        opens = depth == 0 or prev.isspace() or prev in _OPEN_BEFORE or (prev == '"' and prev_opens)
        if opens:
            if depth == 0:
                if i > 0 and not head[segment_start:i].strip():
                    return "two quoted parts with nothing between them"
                segment_start = i + 1
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                if not head[segment_start:i].strip():
                    return "empty quotes"
                segment_start = i + 1
        prev_opens = opens
    if depth != 0:
        return ("unbalanced quotes in the answer (or the quoted sentence contains the marker, "
                "where the official split cuts)")
    if segment_start != len(head):
        return "text between the closing quote and the particle: the answer must end with \""
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
