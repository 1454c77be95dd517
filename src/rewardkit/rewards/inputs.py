"""Reading TRL's keyword call: the completion text (str or chat messages) and each row's reference.

A chat completion's text is its message content, text parts joined; a non-text part is an error, not an empty
string. A reference is a string, a number (written exactly), or a list of alternatives; NaN and None are missing.
"""

from __future__ import annotations

import math
import numbers
from decimal import Decimal
from fractions import Fraction
from typing import Any, SupportsFloat, Union

from rewardkit.core.errors import DataError

Reference = Union[str, list, None]


def completion_text(item: object, index: int, field: str = "completions") -> str:
    """The text of a str or chat-format item (content of the last assistant message)."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        item = [item]
    if isinstance(item, (list, tuple)):
        if not item:
            raise DataError(
                f"{field}[{index}] is an empty message list.",
                hint="pass a string or [{'role': 'assistant', 'content': ...}].",
            )
        messages = [m for m in item if isinstance(m, dict) and m.get("role") == "assistant"] or list(item)
        message = messages[-1]
        if not isinstance(message, dict) or "content" not in message:
            raise DataError(
                f"{field}[{index}]: message {message!r} has no 'content'.",
                hint="chat messages are dicts with 'role' and 'content'.",
            )
        content = message["content"]
        if content is None:  # tool-call-only messages carry no text
            return ""
        if isinstance(content, list):  # multimodal parts: keep the text parts
            return "".join(_part_text(part, f"{field}[{index}].content[{i}]") for i, part in enumerate(content))
        if isinstance(content, str):
            return content
        raise DataError(
            f"{field}[{index}]: content must be a string, got {type(content).__name__}.",
            hint='a string, or a list of parts like {"type": "text", "text": "..."}.',
        )
    raise DataError(f"{field}[{index}] must be a string or a list of chat messages, got {type(item).__name__}.")


# Content part types (TRL's and OpenAI's chat and Responses shapes): text parts are joined, the others skipped.
TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
NON_TEXT_PARTS = frozenset({"image", "image_url", "input_image", "audio", "input_audio", "video", "file", "refusal"})


def _part_text(part: Any, where: str) -> str:
    """The text of one content part: {"type": "text", "text": str}; a known non-text part gives ''."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in TEXT_PARTS and isinstance(part.get("text"), str):
        return part["text"]
    if kind in NON_TEXT_PARTS:
        return ""
    if kind in TEXT_PARTS:
        problem = f"a text part's 'text' must be a string, got {type(part.get('text')).__name__}"
    elif isinstance(part, dict):
        problem = f"a part of type {kind!r} is not a text part" if kind is not None else "a part without 'type'"
    else:
        problem = f"a part must be an object, got {type(part).__name__} {part!r:.40}"
    raise DataError(
        f"{where}: {problem}.",
        hint='content parts look like {"type": "text", "text": "..."} '
        f"(non-text parts: {', '.join(sorted(NON_TEXT_PARTS))}).",
    )


def _real(value: Any) -> bool:
    """A real number that is not a bool: int, float, and numpy's numeric scalars (np.int64, np.float32)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _missing(value: Any) -> bool:
    """None, or a NaN of any float type (how pandas, numpy and datasets spell an empty cell)."""
    if value is None:
        return True
    if isinstance(value, Decimal):
        return value.is_nan()
    return _real(value) and not isinstance(value, numbers.Integral) and math.isnan(value)


def _gold_text(value: Any) -> str | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and _real(value):
        try:
            return str(int(value))
        except ValueError:  # over Python's 4300-digit str() limit
            raise TypeError from None
    if (_real(value) or isinstance(value, Decimal)) and math.isfinite(value):
        return float_text(value)
    raise TypeError


def float_text(value: SupportsFloat) -> str:
    """The shortest text that reads back as this float at its own precision: the number the user wrote.

    numpy's str() of a numpy float is that text for the value's own type (float16/32/64), while widening it to a
    Python float first turns np.float32(0.1) into "0.10000000149011612", which matches no answer "0.1". A
    Python float (and a float32 already widened to float64 by the data loader) is written as Python writes it.

    >>> import numpy as np
    >>> float_text(np.float32(0.1)), float_text(0.1), float_text(np.float16(2.5)), float_text(1e16)
    ('0.1', '0.1', '2.5', '1e+16')
    >>> float_text(Fraction(1, 3)), float_text(Decimal("0.10"))
    ('1/3', '0.10')
    """
    if type(value).__module__ == "numpy" or isinstance(value, (Fraction, Decimal)):  # exact text: 1/3, 0.10
        return str(value)
    return repr(float(value))


def reference_item(value: object, index: int, column: str) -> Reference:
    """One row's reference: a string, a list of golds, or None (missing/NaN: the row is not applicable)."""
    try:
        return _gold_text(value)
    except TypeError:
        pass
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) or _real(v) or v is None for v in value):
        try:
            golds = [g for g in (_gold_text(v) for v in value) if g is not None]
        except TypeError:
            golds = None
        if golds is not None:
            return golds or None
    if isinstance(value, (list, tuple, dict)):
        try:
            return completion_text(value, index, column)
        except DataError:
            pass
    if _real(value) or isinstance(value, Decimal):  # inf, or an integer too long for str()
        shown = f"{value}" if not isinstance(value, numbers.Integral) else f"with {int(value).bit_length()} bits"
        raise DataError(
            f"Reference column {column!r}, row {index}: the number {shown} cannot be a reference (it is "
            "not finite, or too long to write as text).",
            hint="pass the gold as a string, or None for 'no reference'.",
        )
    raise DataError(
        f"Reference column {column!r}, row {index}: expected a string, a number or a list of "
        f"strings, got {type(value).__name__} ({value!r:.80})."
    )
