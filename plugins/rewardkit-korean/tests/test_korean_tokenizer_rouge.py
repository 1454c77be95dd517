"""korean_morpheme tokenizer and ROUGE-1 values worked out by hand on the morphemes."""

from __future__ import annotations

import pickle
import re
from fractions import Fraction

import pytest
from korean_testdata import (
    G_AUX,
    G_AUX_M,
    G_CAKE,
    G_CAKE_M,
    G_DOEYO,
    G_DOEYO_M,
    G_SU,
    G_SU_M,
    P_AUX,
    P_AUX_M,
    P_CAKE,
    P_CAKE_M,
    P_DOEYO,
    P_DOEYO_M,
    P_SU,
    P_SU_M,
    load_sample,
)

from rewardkit_korean.scoring import rouge1_f
from rewardkit_korean.tokenizer import KoreanMorphemeTokenizer, preprocess

# (prediction, reference, F by hand). With clipped overlap o, F = 2PR/(P+R) = 2o / (|pred| + |ref|).
HAND = [
    # shared: 돼요(min 1,2) 는 되 어요 이 → o=5; |pred|=8, |ref|=13 → 10/21
    (P_DOEYO, G_DOEYO, Fraction(10, 21)),
    # every pred morpheme occurs in the reference → o=7; 14/18
    (P_SU, G_SU, Fraction(7, 9)),
    # 'CAKE' lowercases to 'cake', '!' and quotes become spaces → o=6; 12/17
    (P_CAKE, G_CAKE, Fraction(12, 17)),
    # 보조 용언 은 붙여 → o=4; 8/25
    (P_AUX, G_AUX, Fraction(8, 25)),
    # clipping: 돼요 three times in the prediction, twice in the reference → o=2; 4/16
    ("돼요 돼요 돼요", G_DOEYO, Fraction(1, 4)),
    (G_DOEYO, G_DOEYO, Fraction(1)),
    ("전혀 다른 설명", G_SU, Fraction(0)),
    ("...!", G_SU, Fraction(0)),  # a reason with no scorable token scores 0
]


def _official_morphs(text: str) -> list[str]:
    """The official pipeline, written independently of the plugin: lower, replace, strip, then Mecab."""
    import mecab

    cleaned = re.sub("[^A-Za-z0-9가-힣]", " ", text.lower()).strip()
    return list(mecab.MeCab().morphs(cleaned)) if cleaned else []


def _gold_reasons() -> list[tuple[str, str]]:
    """(id, reason) for every non-empty gold reason the plugin ships: sample.jsonl and korean_testdata."""
    from rewardkit_korean.split import split_answer_reason

    sample = [(f"sample-{item['id']}", split_answer_reason(item["output"]["answer"])[1]) for item in load_sample()]
    hand = [("G_DOEYO", G_DOEYO), ("G_SU", G_SU), ("G_CAKE", G_CAKE), ("G_AUX", G_AUX)]
    return [(name, reason) for name, reason in sample + hand if reason]


def test_preprocess() -> None:
    assert preprocess("'왠지'는 A급! ㄱ") == "왠지 는 a급"  # jamo are outside 가-힣; the edges are stripped
    assert preprocess("“CAKE”·케이크") == "cake  케이크"
    assert preprocess(" \n'!'") == ""


def test_preprocess_lowercases_before_replacing() -> None:
    # KELVIN SIGN lowercases to 'k' (inside the allowed set); 'İ' lowercases to 'i' + U+0307 (outside).
    assert preprocess("\u212a") == "k"
    assert preprocess("\u0130x") == "i x"
    assert preprocess("\u212a\u0130") == re.sub("[^A-Za-z0-9가-힣]", " ", "\u212a\u0130".lower()).strip()


@pytest.mark.parametrize("text", ["'입니다' 라고", "'입니다'", "'입니다'로 끝난다.", '"입니다" 는', "“입니다”가 맞다"])
def test_leading_quote_tokenizes_like_the_official_pipeline(text: str) -> None:
    assert KoreanMorphemeTokenizer().tokenize(text) == _official_morphs(text)


def test_without_strip_mecab_segments_a_leading_space_differently() -> None:
    # Why preprocess strips: the pre-fix preprocessing kept the space a leading quote becomes, and Mecab then
    # splits 입니다, so the test above fails without the strip.
    import mecab

    tagger = mecab.MeCab()
    assert tagger.morphs(" 입니다") != tagger.morphs("입니다") == ["입니다"]
    text = "'입니다'로 끝난다."
    unstripped = re.sub("[^A-Za-z0-9가-힣]", " ", text.lower())
    assert unstripped.startswith(" ")
    assert list(tagger.morphs(unstripped)) != _official_morphs(text) == ["입니다", "로", "끝난다"]


@pytest.mark.parametrize(("name", "reason"), _gold_reasons(), ids=[name for name, _ in _gold_reasons()])
def test_tokenizer_matches_official_pipeline_on_every_gold_reason(name: str, reason: str) -> None:
    assert KoreanMorphemeTokenizer().tokenize(reason) == _official_morphs(reason)


def test_gold_reasons_cover_the_sample() -> None:
    # Guards the test above against an empty parametrization: 11 of the 12 sample golds have a reason.
    assert sum(name.startswith("sample-") for name, _ in _gold_reasons()) == 11


@pytest.mark.parametrize(
    ("text", "morphemes"),
    [
        (G_DOEYO, G_DOEYO_M),
        (P_DOEYO, P_DOEYO_M),
        (G_SU, G_SU_M),
        (P_SU, P_SU_M),
        (G_CAKE, G_CAKE_M),
        (P_CAKE, P_CAKE_M),
        (G_AUX, G_AUX_M),
        (P_AUX, P_AUX_M),
        ("...!", []),
    ],
)
def test_morphemes(text: str, morphemes: list[str]) -> None:
    assert KoreanMorphemeTokenizer().tokenize(text) == morphemes


@pytest.mark.parametrize(("prediction", "reference", "expected"), HAND)
def test_rouge1_by_hand(prediction: str, reference: str, expected: Fraction) -> None:
    assert rouge1_f(prediction, reference) == pytest.approx(float(expected), abs=1e-12)


@pytest.mark.parametrize(("prediction", "reference", "expected"), HAND)
def test_rouge_score_with_this_tokenizer_matches(prediction: str, reference: str, expected: Fraction) -> None:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1"], tokenizer=KoreanMorphemeTokenizer())
    assert scorer.score(reference, prediction)["rouge1"].fmeasure == pytest.approx(float(expected), abs=1e-12)


def test_default_rouge_tokenizer_scores_korean_zero() -> None:
    from rouge_score import rouge_scorer

    assert rouge_scorer.RougeScorer(["rouge1"]).score(G_SU, G_SU)["rouge1"].fmeasure == 0.0


def test_pickles_after_use_and_rejects_params() -> None:
    tok = KoreanMorphemeTokenizer()
    tok.tokenize(G_SU)  # builds the MeCab tagger, which cannot be pickled
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.tokenize(P_SU) == P_SU_M
    with pytest.raises(Exception, match="dictionary"):
        KoreanMorphemeTokenizer(dictionary="x")
