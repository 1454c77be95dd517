r"""Reading and checking math answers with math-verify: module-level functions a worker process runs.

Golds arrive as users have them: LaTeX without delimiters (`\frac{1}{2}`, `(0,1]`, `y=2x+1`), `$...$`,
`\boxed{...}`, GSM8K's `#### 18`, plain numbers, or prose ("The answer is 42"). math-verify's default extraction
finds LaTeX only inside delimiters, and reads `2\sqrt{3}` as 2 and `x^2 - 1` as 1 when they are bare, so a
bare LaTeX gold is wrapped in `$...$` first. A plain number and prose are parsed as they are (wrapping prose
turns "hello" into the product h*e*l*l*o). Completions are parsed exactly as TRL's `accuracy_reward` parses
them: LaTeX only, the first `\boxed{}` match first, nothing taken without an anchor.

math-verify's own time limits use `signal.alarm`, which works only in a process's main thread, and a signal
handler runs only between Python bytecodes. These functions turn math-verify's limits off and take a budget: in a
worker's main thread an interval timer stops the task at that budget (the worker survives, no respawn), and the
caller's deadline, a little later, kills the worker when the timer could not (a long C call).
"""

from __future__ import annotations

import collections
import contextlib
import decimal
import functools
import importlib.util
import logging
import pickle
import re
import signal
import threading
from collections.abc import Iterator
from typing import Any, Optional

from rewardkit.core.errors import ConfigError

MATH_EXTRA_HINT = "pip install 'rewardkit[math]'"

_DELIMITED = re.compile(r"(?<!\\)\$|\\\[|\\\(|\\boxed|\\fbox")
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")
_COMMAND = re.compile(r"\\(?:text|mathrm|textbf|mbox|operatorname|begin|end)\s*\{[^{}]*\}|\\[A-Za-z]+")
_WORD = re.compile(
    r"[A-Za-z]{3,}"
)  # three letters in a row outside commands and \\text{}: prose, not a product of symbols


def require_math_verify(owner: str) -> None:
    """Raise one ConfigError naming the extra when math-verify (or its ANTLR runtime) is missing; imports nothing."""
    for module in ("math_verify", "latex2sympy2_extended", "antlr4"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or a module blocked in sys.modules
            found = False
        if not found:
            raise ConfigError(
                f"{owner} needs the math-verify package ({module} is not installed).", hint=MATH_EXTRA_HINT
            )


def gold_latex(text: str) -> str:
    r"""The gold text math-verify should parse: after GSM8K's `####`, bare LaTeX wrapped in `$...$`.

    >>> gold_latex(r"\frac{\sqrt{2}}{2}"), gold_latex("#### 1,000"), gold_latex(r"\boxed{3}")
    ('$\\frac{\\sqrt{2}}{2}$', '1,000', '\\boxed{3}')
    >>> gold_latex("The answer is 42"), gold_latex(r"10\text{ meters}"), gold_latex("1.5e-3")
    ('The answer is 42', '$10\\text{ meters}$', '0.0015')
    """
    text = text.strip()
    if "####" in text:
        text = text.rsplit("####", 1)[1].strip()
    if _PLAIN_NUMBER.fullmatch(text) and text[:1] not in "eE" and "e" in text.lower():
        # math-verify reads a plain 1e10 as 1 (and `$1e10$` as 1*e*10): write the number out, if it is not huge
        value = decimal.Decimal(text.replace(",", ""))
        return format(value, "f") if abs(value.adjusted()) <= 1000 else text
    if not text or _DELIMITED.search(text) or _PLAIN_NUMBER.fullmatch(text):
        return text
    if _WORD.search(_COMMAND.sub(" ", text)):
        return text  # prose: math-verify finds the numbers in it, as it does for TRL
    return f"${text}$"


def _quiet() -> None:
    # With its time limits off math-verify warns on every call that the caller must bound it: the caller does.
    for name in ("math_verify.parser", "math_verify.grader", "math_verify.utils"):
        logging.getLogger(name).setLevel(logging.ERROR)


@functools.lru_cache(maxsize=4096)
def _parsed_gold(text: str) -> tuple[Any, ...]:
    from math_verify import parse

    _quiet()
    return tuple(parse(gold_latex(text), parsing_timeout=None))


def _load(payload: bytes) -> list[Any]:
    from sympy import evaluate

    # sympy objects pickle as (class, args) and are rebuilt by calling the class: with evaluation on, what the
    # LaTeX parser built unevaluated (x \in (0,1] as Eq(x, Interval)) comes back changed or broken.
    with evaluate(False):
        return list(pickle.loads(payload))  # noqa: S301 - bytes this module pickled in a worker of this process


def _key(parsed: list[Any]) -> tuple[str, ...]:
    """What a parse is, exactly: srepr shows every node and assumption (str() prints different objects alike)."""
    from sympy import srepr

    return tuple(x if isinstance(x, str) else srepr(x) for x in parsed)


def _same(a: list[Any], b: list[Any]) -> bool:
    return _key(a) == _key(b)


LATE = "timeout"  # what a task returns when its budget ran out


class _Late(BaseException):
    """Raised by the interval timer (a BaseException: sympy's `except Exception` must not swallow it)."""


@contextlib.contextmanager
def _budget(seconds: float | None) -> Iterator[None]:
    """Raise _Late after `seconds` of wall time; only in a main thread (elsewhere the caller's deadline bounds it)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum: int, frame: object) -> None:
        raise _Late

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def parse_gold(task: tuple[str, float | None]) -> tuple[bool, bytes | None] | str:
    """(parsable, the parse pickled for the check tasks; None when it does not travel intact: parse it there),
    or LATE when the budget (seconds) ran out."""
    text, seconds = task
    try:
        with _budget(seconds):
            return _read_gold(text)
    except _Late:
        return LATE


def _read_gold(text: str) -> tuple[bool, bytes | None]:
    parsed = list(_parsed_gold(text))
    if not parsed:
        return False, None
    payload = pickle.dumps(parsed)
    return True, payload if _same(parsed, _load(payload)) else None


def parse_completion(text: str) -> list[Any]:
    r"""math-verify's parse of a completion, configured as TRL's `accuracy_reward` (`\boxed{}` first)."""
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import LatexExtractionConfig, parse

    _quiet()
    config = LatexExtractionConfig(
        normalization_config=NormalizationConfig(units=True), boxed_match_priority=0, try_extract_without_anchor=False
    )
    return list(parse(text, extraction_config=[config], extraction_mode="first_match", parsing_timeout=None))


Gold = tuple[str, Optional[bytes]]  # the gold text and its parse as `parse_gold` pickled it


# (gold text, answer key) -> verify's verdict, in this worker. Comparing is most of the cost (sympy's simplify),
# and a GRPO group repeats its answers: 5 of 8 completions saying "18" in different words is one comparison.
_VERDICTS: collections.OrderedDict[tuple[str, tuple[str, ...]], bool] = collections.OrderedDict()
_MAX_VERDICTS = 65_536


def check_answer(task: tuple[list[Gold], str, float | None]) -> float | str:
    """1.0 when the completion matches any of the row's golds (gold first, as math-verify wants), else 0.0; LATE
    when the budget (seconds) ran out."""
    golds, completion, seconds = task
    try:
        with _budget(seconds):
            return _check(golds, completion)
    except _Late:
        return LATE


def _check(golds: list[Gold], completion: str) -> float:
    from math_verify import verify

    answer = parse_completion(completion)
    key = _key(answer)
    for text, payload in golds:
        verdict = _VERDICTS.get((text, key))
        if verdict is None:
            gold = _load(payload) if payload is not None else list(_parsed_gold(text))
            verdict = bool(verify(gold, answer, timeout_seconds=None))
            _VERDICTS[(text, key)] = verdict
            if len(_VERDICTS) > _MAX_VERDICTS:
                _VERDICTS.popitem(last=False)
        if verdict:
            return 1.0
    return 0.0


def warm_up(_: object) -> None:
    """Import math-verify and run its parser once in this process, so no item's deadline pays for start-up."""
    _check([("1", _read_gold("1")[1])], r"\boxed{1}")
