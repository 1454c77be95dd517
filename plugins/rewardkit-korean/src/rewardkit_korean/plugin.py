"""rewardkit entry point (group "rewardkit", name "korean"): registers this package's names.

Importing this module stays cheap: no torch/transformers/bert_score, and Mecab loads on first tokenize.
"""

from __future__ import annotations

from pathlib import Path

from rewardkit import Register, hookimpl
from rewardkit_korean.rewards import KoreanQAExactMatch, KoreanQAFormat
from rewardkit_korean.split import AnswerView, ReasonView
from rewardkit_korean.tokenizer import KoreanMorphemeTokenizer

PRESETS = Path(__file__).resolve().parent / "presets"


@hookimpl
def register_rewards(register: Register) -> None:
    """Register the exact-match and format rewards."""
    register.reward(KoreanQAExactMatch.name, KoreanQAExactMatch)
    register.reward(KoreanQAFormat.name, KoreanQAFormat)


@hookimpl
def register_views(register: Register) -> None:
    """Register the official answer/reason split as views."""
    register.view(AnswerView.name, AnswerView)
    register.view(ReasonView.name, ReasonView)


@hookimpl
def register_tokenizers(register: Register) -> None:
    """Register the Mecab morpheme tokenizer for ROUGE."""
    register.tokenizer(KoreanMorphemeTokenizer.name, KoreanMorphemeTokenizer)


@hookimpl
def register_presets(register: Register) -> None:
    """Register the shipped compose specs."""
    register.preset(
        "official",
        PRESETS / "official.yaml",
        summary="Korean grammar-QA: the final score without BLEURT (n = 2), (EM + (ROUGE-1 + BERTScore)/2)/2.",
    )
    register.preset(
        "official_full",
        PRESETS / "official_full.yaml",
        summary="Korean grammar-QA: the exact official final score (n = 3), (EM + (ROUGE-1 + BERTScore + BLEURT)/3)/2.",
    )
    register.preset(
        "official_strict",
        PRESETS / "official_strict.yaml",
        summary="Korean grammar-QA: official (n = 2) with a missing reason scored 0 per item: for selection that "
        "leaving reasons out cannot game (not the competition's number).",
    )
    register.preset(
        "blog",
        PRESETS / "blog.yaml",
        summary="Korean grammar-QA: the entrant's blog reward, (bertscore + em + (format + 3*rouge1)/2)/3.",
    )
