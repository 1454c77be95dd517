"""repetition_penalty against TRL's get_repetition_penalty_reward (tokens) and open-r1's version (words)."""

import random

import pytest

from rewardkit import ConfigError, DataError, get_reward


def test_token_ngrams_equal_trl():
    from trl.rewards import get_repetition_penalty_reward

    rng = random.Random(0)
    ids = [[rng.randrange(v) for _ in range(rng.randrange(0, 40))] for v in (2, 3, 50) for _ in range(30)]
    ids += [[], [7], [7, 7], [1, 2, 1, 2, 1, 2]]
    for n, penalty in [(1, -1.0), (2, -0.5), (3, -1.0), (5, -2.0)]:
        theirs = get_repetition_penalty_reward(ngram_size=n, max_penalty=penalty)(completion_ids=ids)
        reward = get_reward("repetition_penalty", ngram_size=n, max_penalty=penalty)
        assert reward(completions=["x"] * len(ids), completion_ids=ids) == theirs
        assert any(t < 0 for t in theirs)


# open-r1: lowercased whitespace words; an empty text or fewer words than ngram_size gives 0.0.
@pytest.mark.parametrize(
    "text,expected",
    [
        ("the cat the cat the cat", -(1 - 2 / 5)),  # bigrams: 5, distinct 2
        ("The cat THE CAT", -(1 - 2 / 3)),
        ("a b c d", 0.0),
        ("", 0.0),
        ("one", 0.0),
    ],
)
def test_words_open_r1(text, expected):
    reward = get_reward("repetition_penalty", ngram_size=2, unit="words")
    assert reward(completions=[text]) == [pytest.approx(expected)]


def test_bad_input():
    with pytest.raises(ConfigError, match="max_penalty"):
        get_reward("repetition_penalty", max_penalty=0.5)
    with pytest.raises(DataError, match="completion_ids"):
        get_reward("repetition_penalty")(completions=["a b"])
