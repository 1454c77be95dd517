"""Exact match on normalized text."""

from __future__ import annotations

import unicodedata
from typing import Literal

from pydantic import Field

from rewardkit.rewards.base import Reference, Reward, RewardParams, reference_options

_ASCII_QUOTES = str.maketrans("", "", "\"'")


def normalize(
    text: str,
    *,
    strip: bool = True,
    remove_quotes: bool = False,
    collapse_whitespace: bool = False,
    casefold: bool = False,
    unicode: Literal["none", "NFC", "NFKC"] = "none",
) -> str:
    """Apply the exact_match normalizations in a fixed order: unicode, quotes, whitespace, case, strip."""
    if unicode != "none":
        text = unicodedata.normalize(unicode, text)
    if remove_quotes:
        text = text.translate(_ASCII_QUOTES)
    if collapse_whitespace:
        text = " ".join(text.split())
    if casefold:
        text = text.casefold()
    return text.strip() if strip else text


class ExactMatch(Reward):
    """1.0 when the normalized completion equals the normalized reference (or one of its alternatives).

    Normalization is conservative by default: only surrounding whitespace is stripped. Opt in to more.

    Args:
        reference (`str`, defaults to `"answer"`): dataset column with the gold text (or a list of golds).
        alternatives (`str`, *optional*): separator splitting one gold into alternatives, e.g. `"#"`.
        strip (`bool`, defaults to `True`): strip surrounding whitespace.
        remove_quotes (`bool`, defaults to `False`): delete ASCII `"` and `'`.
        collapse_whitespace (`bool`, defaults to `False`): turn runs of whitespace into one space.
        casefold (`bool`, defaults to `False`): compare case-insensitively.
        unicode (`"none" | "NFC" | "NFKC"`, defaults to `"none"`): Unicode normalization form.

    Example:
    >>> from rewardkit import get_reward
    >>> reward = get_reward("exact_match", alternatives="#", casefold=True)
    >>> reward(completions=["Paris", "paris ", "Lyon"], answer=["Paris#Paname"] * 3)
    [1.0, 1.0, 0.0]
    """

    name = "exact_match"
    needs_reference = True

    class Params(RewardParams):
        reference: str | None = "answer"
        alternatives: str | None = Field(None, min_length=1)
        strip: bool = True
        remove_quotes: bool = False
        collapse_whitespace: bool = False
        casefold: bool = False
        unicode: Literal["none", "NFC", "NFKC"] = "none"

    def _norm(self, text: str) -> str:
        p = self.params
        return normalize(
            text,
            strip=p.strip,
            remove_quotes=p.remove_quotes,
            collapse_whitespace=p.collapse_whitespace,
            casefold=p.casefold,
            unicode=p.unicode,
        )

    def score(self, completion: str, reference: Reference) -> float | None:
        options = {self._norm(alt) for alt in reference_options(reference, self.params.alternatives)}
        return 1.0 if self._norm(completion) in options else 0.0
