"""korean_morpheme tokenizer and ROUGE-1 values worked out by hand on the morphemes."""

from __future__ import annotations

import pickle
from fractions import Fraction

import pytest

from rewardkit_korean.scoring import rouge1_f
from rewardkit_korean.tokenizer import KoreanMorphemeTokenizer, preprocess

G_DOEYO = "'돼요'는 '되어요'가 줄어든 말이므로 '돼요'로 적는다."
G_DOEYO_M = ["돼요", "는", "되", "어요", "가", "줄어든", "말", "이", "므로", "돼요", "로", "적", "는다"]
P_DOEYO = "'돼요'는 '되어요'의 준말이다."
P_DOEYO_M = ["돼요", "는", "되", "어요", "의", "준말", "이", "다"]
G_SU = "'수'는 의존 명사이므로 앞말과 띄어 쓴다."
G_SU_M = ["수", "는", "의존", "명사", "이", "므로", "앞말", "과", "띄", "어", "쓴다"]
P_SU = "의존 명사 '수'는 띄어 쓴다."
P_SU_M = ["의존", "명사", "수", "는", "띄", "어", "쓴다"]
G_CAKE = "외래어 표기법에 따라 영어 cake는 '케이크'로 적는다."
G_CAKE_M = ["외래어", "표기법", "에", "따라", "영어", "cake", "는", "케이크", "로", "적", "는다"]
P_CAKE = "CAKE는 케이크로 적는다!"
P_CAKE_M = ["cake", "는", "케이크", "로", "적", "는다"]
G_AUX = "보조 용언은 띄어 씀을 원칙으로 하되, 경우에 따라 붙여 씀도 허용한다."
G_AUX_M = ["보조", "용언", "은", "띄", "어", "씀", "을", "원칙", "으로", "하", "되", "경우", "에", "따라",
           "붙여", "씀", "도", "허용", "한다"]
P_AUX = "보조 용언은 붙여 써도 된다."
P_AUX_M = ["보조", "용언", "은", "붙여", "써도", "된다"]

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


def test_preprocess() -> None:
    assert preprocess("'왠지'는 A급! ㄱ") == " 왠지 는 a급   "  # jamo are outside 가-힣
    assert preprocess("“CAKE”·케이크") == " cake  케이크"


@pytest.mark.parametrize(("text", "morphemes"), [(G_DOEYO, G_DOEYO_M), (P_DOEYO, P_DOEYO_M), (G_SU, G_SU_M),
                                                  (P_SU, P_SU_M), (G_CAKE, G_CAKE_M), (P_CAKE, P_CAKE_M),
                                                  (G_AUX, G_AUX_M), (P_AUX, P_AUX_M), ("...!", [])])
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
