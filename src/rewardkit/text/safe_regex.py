"""Regex matching with a time budget, so a catastrophic pattern cannot hang a training step."""

from __future__ import annotations

import warnings
from typing import Any

import regex

from rewardkit.core.errors import ConfigError

_FLAGS = {
    "IGNORECASE": regex.IGNORECASE,
    "MULTILINE": regex.MULTILINE,
    "DOTALL": regex.DOTALL,
    "VERBOSE": regex.VERBOSE,
    "ASCII": regex.ASCII,
    "UNICODE": regex.UNICODE,
}
_warned: set[str] = set()


def compile_pattern(pattern: str, flags: list[str] | tuple[str, ...] = (), owner: str = "regex") -> Any:
    """Compile `pattern` with the `regex` package; an invalid pattern or flag raises ConfigError."""
    value = 0
    for flag in flags:
        if flag.upper() not in _FLAGS:
            raise ConfigError(
                f"Unknown regex flag {flag!r} in {owner} (parameter 'flags').", hint=f"use any of {', '.join(_FLAGS)}."
            )
        value |= _FLAGS[flag.upper()]
    try:
        return regex.compile(pattern, value)
    except (regex.error, TypeError) as exc:
        raise ConfigError(
            f"Invalid regular expression in {owner} (parameter 'pattern'): {pattern!r} ({exc}).",
            hint='test it with `python -c "import regex; regex.compile(...)"`.',
        ) from exc


def run(compiled: Any, method: str, text: str, timeout: float, owner: str) -> Any:
    """Call compiled.<method>(text) (or the last match for method="last") with a timeout; on expiry warn once per owner and return None."""
    try:
        if method == "last":
            match = None
            for match in compiled.finditer(text, timeout=timeout):  # noqa: B007 - keeps the last match
                pass
            return match
        return getattr(compiled, method)(text, timeout=timeout)
    except TimeoutError:
        if owner not in _warned:
            _warned.add(owner)
            warnings.warn(
                f"{owner}: pattern {compiled.pattern!r} took over {timeout}s on a {len(text)}-char text; "
                "scored as no match. Hint: make the pattern linear (avoid nested quantifiers).",
                RuntimeWarning,
                stacklevel=2,
            )
        return None
