"""The competition's rewards: official (or lenient) exact match and the answer-format check."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rewardkit import ExactMatch, Reference, Reward, RewardParams, ViewSpec
from rewardkit_korean.exact_match import normalize_answer
from rewardkit_korean.format_check import is_well_formed


class KoreanQAExactMatch(ExactMatch):
    """Exact match of the answer part, by the Korean grammar-QA competition's official rule (or a lenient one).

    Both texts are cut with the official split (views `answer`), ASCII quotes are removed and the result is
    stripped; the gold may list alternatives separated by `#`. That is rewardkit's `exact_match` with
    `remove_quotes=True, alternatives="#"` on the `answer` view, which is what this class configures.

    Args:
        reference (`str`, defaults to `"answer"`): dataset column with the gold text (the whole
            `"…"가 옳다. 이유` answer, or a list of them).
        mode (`"official" | "lenient"`, defaults to `"official"`): `lenient` also removes curly quotes
            (“”‘’) and collapses whitespace runs — a denser training signal, not the competition's score.
        completion_view / reference_view (defaults to `"answer"`): the part compared.

    Example:
    >>> from rewardkit import get_reward
    >>> em = get_reward("korean_qa_exact_match")
    >>> em(completions=['"왠지 좋다."가 옳다. 줄어든 말이다.', '“왠지 좋다.”가 옳다. 이유'],
    ...    answer=['"왠지 좋다."가 옳다. \\'왜인지\\'가 줄어든 말이다.'] * 2)
    [1.0, 0.0]
    """

    name = "korean_qa_exact_match"
    needs_reference = True

    class Params(ExactMatch.Params):
        completion_view: ViewSpec = Field("answer", description="Part of the completion compared.")
        reference_view: ViewSpec = Field("answer", description="Part of the gold compared.")
        alternatives: str | None = Field("#", min_length=1, description="Separator of gold alternatives.")
        remove_quotes: bool = True
        mode: Literal["official", "lenient"] = Field(
            "official",
            description="official = the competition's EM; lenient also drops curly quotes and "
            "collapses whitespace (training signal only).",
        )

    def _norm(self, text: str) -> str:
        if self.params.mode == "lenient":
            return normalize_answer(text, "lenient")
        return super()._norm(text)


class KoreanQAFormat(Reward):
    """1.0 when the completion is a well-formed competition answer (`"…"가 옳다. 이유`), else 0.0.

    The accepted grammar (nested quotes, a space before the particle, prose alternatives, `이 옳다`) is in
    `rewardkit_korean.format_check`; `format_error(text)` says why a text is rejected.

    Args:
        completion_view (defaults to the whole completion): the part checked.

    Example:
    >>> from rewardkit import get_reward
    >>> fmt = get_reward("korean_qa_format")
    >>> fmt(completions=['"그는 "왜?"라고 물었다"가 옳다. 직접 인용이다.', '"왠지 좋다."가 옳다.'])
    [1.0, 0.0]
    """

    name = "korean_qa_format"
    needs_reference = False

    class Params(RewardParams):
        pass

    def score(self, completion: str, reference: Reference) -> float | None:
        return 1.0 if is_well_formed(completion) else 0.0
