"""Exact number extraction and comparison for math rewards. Nothing here evaluates text as code.

A decimal is kept as a canonical (sign, digits, exponent) triple, so a 100,000-digit number compares without
`int()` (Python refuses `int()` of strings over 4300 digits). Fractions become `fractions.Fraction` when
their parts are small enough to convert.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Union

Triple = tuple[int, str, int]  # sign (-1, 0, 1), significant digits, power of ten
Number = Union[Triple, Fraction]

_MAX_DIGITS = 4000  # below CPython's 4300-digit int() limit
_TOKEN = re.compile(
    r"(?P<fsign>[-+]?)\\[dt]?frac\s*\{\s*(?P<fnum>[-+]?[\d.,]+)\s*\}\s*\{\s*(?P<fden>[-+]?[\d.,]+)\s*\}"
    r"|(?<![\w.])(?P<num>[-+]?(?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d{1,9}(?!\d))?"
    r"(?:/\d+(?:\.\d+)?)?)(?![eE][-+]?\d)"  # an exponent too long to read makes no number, not the mantissa
)
_DECIMAL = re.compile(r"([-+]?)(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d{1,9}))?")


def last_boxed(text: str) -> str | None:
    """Content of the last balanced \\boxed{...} (nested braces allowed), or None."""
    # One pass pairing braces keeps hostile input ("\\boxed{" * 50_000) linear.
    close_of: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            close_of[stack.pop()] = i
    start = text.rfind("\\boxed")
    while start != -1:
        i = start + len("\\boxed")
        while i < len(text) and text[i] == " ":
            i += 1
        if i in close_of and text[i] == "{":
            return text[i + 1 : close_of[i]]
        start = text.rfind("\\boxed", 0, start)
    return None


def _normalize(text: str) -> str:
    return text.replace("\u2212", "-").replace("\u2013", "-")


def last_number_text(text: str) -> str | None:
    """Return the text of the last number (decimal, fraction or \\frac) in `text`, or None."""
    last = None
    for last in _TOKEN.finditer(_normalize(text)):  # noqa: B007 - the loop leaves the last match in `last`
        pass
    return last.group(0) if last else None


def _decimal(text: str) -> Triple | None:
    match = _DECIMAL.fullmatch(text.replace(",", "").strip())
    if not match or not (match.group(2) or match.group(3)):
        return None
    sign, whole, frac, exp = match.group(1), match.group(2) or "", match.group(3) or "", match.group(4)
    digits = (whole + frac).lstrip("0")
    power = (int(exp) if exp else 0) - len(frac)
    stripped = digits.rstrip("0")
    power += len(digits) - len(stripped)
    if not stripped:
        return (0, "", 0)
    return (-1 if sign == "-" else 1, stripped, power)


def _fraction(value: Number) -> Fraction | None:
    if isinstance(value, Fraction):
        return value
    sign, digits, power = value
    if len(digits) > _MAX_DIGITS or abs(power) > _MAX_DIGITS:
        return None
    return sign * Fraction(int(digits or "0")) * Fraction(10) ** power


def _ratio(num: Number | None, den: Number | None) -> Fraction | None:
    if num is None or den is None:
        return None
    a, b = _fraction(num), _fraction(den)
    if a is None or b is None or b == 0:
        return None
    return a / b


def parse_number(text: str) -> Number | None:
    """Parse one number token (as found by `last_number_text`); None when it has no exact value."""
    text = _normalize(text).strip().lstrip("$")
    match = _TOKEN.fullmatch(text)
    if match is None:
        return None
    if match.group("fnum") is not None:
        value = _ratio(_decimal(match.group("fnum")), _decimal(match.group("fden")))
        if value is not None and match.group("fsign") == "-":
            value = -value
        return value
    num, _, den = match.group("num").partition("/")
    return _ratio(_decimal(num), _decimal(den)) if den else _decimal(num)


def extract_answer(text: str) -> Number | None:
    """The value of the last \\boxed{} if any, else after the last '####', else the last number in the text."""
    boxed = last_boxed(text)
    if boxed is not None:
        text = boxed
    elif "####" in text:
        text = text.rsplit("####", 1)[1]
    token = last_number_text(text)
    return parse_number(token) if token is not None else None


def numbers_equal(a: Number, b: Number) -> bool:
    """Exact equality of two parsed numbers."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return a == b
    fa, fb = _fraction(a), _fraction(b)
    return fa is not None and fb is not None and fa == fb
