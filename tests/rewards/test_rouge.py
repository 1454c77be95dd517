"""rouge1 reward and the built-in tokenizers: bit-identical with rouge_score on English, right on Korean."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import ConfigError, UnknownNameError, get_reward, get_tokenizer
from rewardkit.text.text_tokenizers import Auto, Chars, RougeDefault, UnicodeWords, rouge_tokenize

# (reference, completion): case, punctuation, numbers, repeats (clipping), no overlap, subsets, long text.
PAIRS = [
    ("The cat sat on the mat.", "The cat sat on the mat."),
    ("The cat sat on the mat.", "A cat was sitting on a mat"),
    ("the quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log."),
    ("Paris is the capital of France.", "The capital of France is Paris!"),
    ("42", "The answer is 42."),
    ("The answer is 42.", "42"),
    ("the the the the", "the"),
    ("the", "the the the the"),
    ("apples and oranges", "bananas"),
    ("It's 3.14 -- roughly pi.", "its 3 14 roughly PI"),
    ("e-mail: john_doe@example.com", "email john doe example com"),
    ("New York-based start-up raised $5M in Q3 2024.", "A startup from New York raised 5M dollars in 2024"),
    ("Photosynthesis converts light energy into chemical energy.", "Plants turn light into chemical energy."),
    ("x = 2 * (y + 3)", "x equals two times y plus 3"),
    ("one two three four five six seven eight nine ten", "ten nine eight seven six five four three two one"),
    ("Hello, World!", "hello world"),
    ("The model overfits because the dataset is small.", "Because the dataset is small, the model overfits."),
    ("a b c d e f g", "a a b b c c"),
    ("Tabs\tand\nnewlines count as spaces", "tabs and newlines count as spaces"),
    ("UPPER lower MiXeD", "upper LOWER mixed case"),
    ("No overlap at all here", "Completely different words"),
]
MEASURES = {"f": "fmeasure", "precision": "precision", "recall": "recall"}


def rouge_score_value(reference: str, completion: str, measure: str = "fmeasure", tokenizer=None) -> float:
    from rouge_score.rouge_scorer import RougeScorer

    return getattr(RougeScorer(["rouge1"], tokenizer=tokenizer).score(reference, completion)["rouge1"], measure)


@pytest.mark.parametrize("score", ["f", "precision", "recall"])
@pytest.mark.parametrize("tokenizer", ["auto", "rouge_default", "unicode_words"])
def test_bit_identical_with_rouge_score_on_english(score: str, tokenizer: str) -> None:
    reward = get_reward("rouge1", score=score, tokenizer=tokenizer)
    got = reward(completions=[c for _, c in PAIRS], answer=[r for r, _ in PAIRS])
    expected = [rouge_score_value(r, c, MEASURES[score]) for r, c in PAIRS]
    assert got == expected  # exact: same tokens, same rouge_score arithmetic
    assert len(set(expected)) >= 8  # the pairs exercise many different values


def test_chat_completions_and_number_references() -> None:
    reward = get_reward("rouge1", reference="solution")
    chat = [[{"role": "assistant", "content": "The answer is 42"}]]
    assert reward(completions=chat, solution=[42]) == [rouge_score_value("42", "The answer is 42")]


def test_several_references_give_the_best_score() -> None:
    completion = "the cat sat on the mat"
    golds = ["a dog barked", "the cat sat", "", "the cat sat on a mat today"]
    expected = max(rouge_score_value(g, completion) for g in golds if g)
    as_list = get_reward("rouge1")(completions=[completion], answer=[golds])
    as_alternatives = get_reward("rouge1", alternatives="#")(completions=[completion], answer=["#".join(golds)])
    assert as_list == as_alternatives == [expected]
    # best per measure, not the measure of the best-F reference
    recall = get_reward("rouge1", score="recall")(completions=[completion], answer=[golds])
    assert recall == [max(rouge_score_value(g, completion, "recall") for g in golds if g)] == [1.0]


def test_empty_cases() -> None:
    reward = get_reward("rouge1", alternatives="#")
    got = reward(
        completions=["", "   ", "the cat", "the cat", "the cat", "..."],
        answer=["the cat", "the cat", "", "#  #", "!!!", "the cat"],
    )
    # empty / punctuation-only completion: 0.0; reference with no tokens: nothing to compare, None
    assert got == [0.0, 0.0, None, None, None, 0.0]
    assert get_reward("rouge1")(completions=["a", "b"], answer=[[], ["", " "]]) == [None, None]


def test_korean_identical_scores_one_by_default() -> None:
    sentence = "'왠지'는 '왜인지'가 줄어든 말이므로 '왠지'로 써야 한다."
    assert get_reward("rouge1")(completions=[sentence], answer=[sentence]) == [1.0]
    assert rouge_score_value(sentence, sentence) == 0.0  # what plain rouge_score gives


def test_korean_partial_overlap_hand_computed() -> None:
    reference = "나는 어제 학교에 갔다"  # tokens: 나는 / 어제 / 학교에 / 갔다 (4)
    completion = "나는 오늘 학교에 갔다 왔다."  # tokens: 나는 / 오늘 / 학교에 / 갔다 / 왔다 (5)
    assert UnicodeWords().tokenize(completion) == ["나는", "오늘", "학교에", "갔다", "왔다"]
    # overlap {나는, 학교에, 갔다} = 3; P = 3/5, R = 3/4, F = 2PR / (P + R) = (9/10) / (27/20) = 2/3
    p, r = 3 / 5, 3 / 4
    scores = {
        s: get_reward("rouge1", score=s)(completions=[completion], answer=[reference])[0]
        for s in ("precision", "recall", "f")
    }
    assert scores == {"precision": p, "recall": r, "f": 2 * p * r / (p + r)}
    assert scores["f"] == pytest.approx(2 / 3)
    # clipping: "학교" appears 3 times in the completion but once in the reference: overlap 1,
    # P = 1/3, R = 1/2, F = 2 * (1/6) / (5/6) = 0.4
    assert get_reward("rouge1")(completions=["학교 학교 학교"], answer=["학교 집"]) == [pytest.approx(0.4)]


def test_mixed_pair_uses_one_tokenization_for_both_sides() -> None:
    # ASCII reference, non-ASCII completion: auto must tokenize both like unicode_words
    reference, completion = "The cafe opens at 9", "The café opens at 9 — 카페"
    auto = get_reward("rouge1")(completions=[completion], answer=[reference])
    unicode = get_reward("rouge1", tokenizer="unicode_words")(completions=[completion], answer=[reference])
    assert auto == unicode == [rouge_score_value(reference, completion, tokenizer=UnicodeWords())]
    assert auto[0] == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5))  # the, opens, at, 9 shared


def test_forced_rouge_default_on_korean_warns_once() -> None:
    reward = get_reward("rouge1", tokenizer="rouge_default")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = reward(completions=["고양이", "cat"], answer=["고양이", "고양이"])
        second = reward(completions=["고양이"], answer=["강아지"])
    messages = [str(w.message) for w in caught if "produced no tokens" in str(w.message)]
    assert len(messages) == 1 and "tokenizer='auto'" in messages[0]
    assert first == [None, None] and second == [None]  # the reference is erased: nothing to compare
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # English text is not erased: no warning
        assert get_reward("rouge1", tokenizer="rouge_default")(completions=["a"], answer=["a"]) == [1.0]


def test_pickle_round_trip() -> None:
    reward = get_reward("rouge1", score="recall", alternatives="#", name="rouge")
    before = reward(completions=[c for _, c in PAIRS], answer=[r for r, _ in PAIRS])
    clone = pickle.loads(pickle.dumps(reward))
    assert clone._scorer is None and clone.__name__ == "rouge"
    assert clone(completions=[c for _, c in PAIRS], answer=[r for r, _ in PAIRS]) == before


def test_unknown_names_and_parameters() -> None:
    with pytest.raises(UnknownNameError, match="unicode_words"):
        get_reward("rouge1", tokenizer="unicode_word")  # suggests the close name, lists what exists
    with pytest.raises(ConfigError, match="score"):
        get_reward("rouge1", score="f1")
    with pytest.raises(ConfigError, match="lowercase"):
        get_tokenizer("chars", lowercase=False)


def test_rouge_score_is_imported_lazily() -> None:
    code = (
        "import sys, rewardkit; r = rewardkit.get_reward('rouge1'); assert 'nltk' not in sys.modules; "
        "r(completions=['a'], answer=['a']); assert 'rouge_score.rouge_scorer' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_builtin_tokenizers() -> None:
    assert isinstance(get_tokenizer("auto"), Auto)
    assert get_tokenizer("rouge_default").tokenize("Korean 한국어 text") == ["korean", "text"]
    assert get_tokenizer("unicode_words").tokenize("Korean 한국어, text_2") == ["korean", "한국어", "text", "2"]
    assert get_tokenizer("chars").tokenize("猫が 座った。") == ["猫", "が", "座", "っ", "た", "。"]
    assert UnicodeWords().tokenize("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]  # vowel signs stay inside words
    assert UnicodeWords().tokenize("ＡＢＣ１２３") == ["abc123"]  # NFKC folds full-width forms
    for tok in (Auto(), Chars(), RougeDefault(), UnicodeWords()):
        assert pickle.loads(pickle.dumps(tok)).tokenize("a b") == tok.tokenize("a b")


def test_chars_tokenizer_for_unspaced_scripts() -> None:
    words = get_reward("rouge1")(completions=["猫が座った"], answer=["猫が寝た"])
    chars = get_reward("rouge1", tokenizer="chars")(completions=["猫が座った"], answer=["猫が寝た"])
    assert words == [0.0]  # one "word" each side
    assert chars == [pytest.approx(2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4))]  # 猫, が, た shared


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_unicode_words_equals_rouge_tokenizer_on_ascii(text: str) -> None:
    assert UnicodeWords().tokenize(text) == rouge_tokenize(text) == Auto().tokenize(text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_auto_equals_unicode_words_everywhere(text: str) -> None:
    # hence deciding per text is the same as deciding per pair: both sides always get the same tokenization
    assert Auto().tokenize(text) == UnicodeWords().tokenize(text)
