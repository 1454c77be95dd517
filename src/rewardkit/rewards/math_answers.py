r"""Reading and checking math answers with math-verify: module-level functions a worker process runs.

Golds arrive as users have them: LaTeX without delimiters (`\frac{1}{2}`, `(0,1]`, `y=2x+1`), `$...$`,
`\boxed{...}`, GSM8K's `#### 18`, plain numbers, or prose ("The answer is 42"). math-verify's default extraction
finds LaTeX only inside delimiters, and reads `2\sqrt{3}` as 2 and `x^2 - 1` as 1 when they are bare, so a
bare LaTeX gold is wrapped in `$...$` first. A plain number and prose are parsed as they are (wrapping prose
turns "hello" into the product h*e*l*l*o). Completions are parsed exactly as TRL's `accuracy_reward` parses
them: LaTeX only, the first `\boxed{}` match first, nothing taken without an anchor.

math-verify's own time limits use `signal.alarm`, which works only in a process's main thread; these functions
turn them off, and the caller bounds them from outside (a worker process killed at its deadline).
"""

from __future__ import annotations

import importlib.util
import logging
import re
from typing import Any

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
    >>> gold_latex("The answer is 42"), gold_latex(r"10\text{ meters}")
    ('The answer is 42', '$10\\text{ meters}$')
    """
    text = text.strip()
    if "####" in text:
        text = text.rsplit("####", 1)[1].strip()
    if not text or _DELIMITED.search(text) or _PLAIN_NUMBER.fullmatch(text):
        return text
    if _WORD.search(_COMMAND.sub(" ", text)):
        return text  # prose: math-verify finds the numbers in it, as it does for TRL
    return f"${text}$"


def _quiet() -> None:
    # With its time limits off math-verify warns on every call that the caller must bound it: the caller does.
    for name in ("math_verify.parser", "math_verify.grader", "math_verify.utils"):
        logging.getLogger(name).setLevel(logging.ERROR)


def parse_gold(text: str) -> list[Any]:
    """math-verify's parse of one gold text (an empty list when nothing could be read)."""
    from math_verify import parse

    _quiet()
    return list(parse(gold_latex(text), parsing_timeout=None))  # type: ignore[arg-type]


def parse_completion(text: str) -> list[Any]:
    r"""math-verify's parse of a completion, configured as TRL's `accuracy_reward` (`\boxed{}` first)."""
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import LatexExtractionConfig, parse

    _quiet()
    config = LatexExtractionConfig(
        normalization_config=NormalizationConfig(units=True), boxed_match_priority=0, try_extract_without_anchor=False
    )
    return list(parse(text, extraction_config=[config], extraction_mode="first_match", parsing_timeout=None))  # type: ignore[arg-type]


def check_answer(task: tuple[list[list[Any]], str]) -> float:
    """1.0 when the completion matches any of the row's parsed golds (gold first, as math-verify wants)."""
    from math_verify import verify

    golds, completion = task
    answer = parse_completion(completion)
    return 1.0 if any(verify(gold, answer, timeout_seconds=None) for gold in golds) else 0.0  # type: ignore[arg-type]
