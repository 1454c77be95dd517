"""cosine_length against TRL's get_cosine_scaled_reward; brevity's soft_overlong against get_soft_overlong_punishment."""

import json
import math

import pytest

from rewardkit import ConfigError, compose, get_reward
from rewardkit.composition.scoring import score_rows
from tests.conftest import TESTS

PAIRS = [json.loads(line) for line in (TESTS / "fixtures" / "math_parity.jsonl").read_text().splitlines()]


def test_cosine_length_equals_trl():
    from trl.rewards import get_cosine_scaled_reward

    rows = PAIRS[::3]
    golds = [r["gold"] for r in rows if r["gold"].startswith(("$", "\\boxed"))]  # read alike by both
    comps = [r["completion"] for r in rows if r["gold"].startswith(("$", "\\boxed"))]
    ids = [[1] * (i * 7 % 130) for i in range(len(comps))]  # lengths across and past max_len
    kw = dict(min_value_wrong=-0.8, max_value_wrong=-0.2, min_value_correct=0.3, max_value_correct=0.9)
    theirs = get_cosine_scaled_reward(max_len=100, **kw)(
        [[{"role": "assistant", "content": c}] for c in comps], golds, ids
    )
    correct = {"use": "math_verify", "reference": "solution"}
    ours = get_reward("cosine_length", max_length=100, correct=correct, **kw)(
        completions=comps, solution=golds, completion_ids=ids
    )
    assert ours == pytest.approx(theirs) and len(ours) >= 20
    assert any(t > 0 for t in theirs) and any(t < 0 for t in theirs)


def test_cosine_length_none_when_correctness_is_none():
    composed = compose({"rewards": {"cos": {"use": "cosine_length", "max_length": 10, "unit": "chars"}}})
    scores = score_rows(composed, [{"completion": r"\boxed{1}", "answer": "hello"}, {"completion": "x", "answer": "1"}])
    assert scores.components["cos"] == [None, pytest.approx(-0.5 + 0.5 * (-1.0 + 0.5) * (1 + math.cos(0.1 * math.pi)))]
    assert scores.none_reasons["cos"] == {"correct: unparsable gold": 1}


def test_cosine_length_any_correctness_reward():
    reward = get_reward("cosine_length", max_length=4, unit="chars", correct={"use": "exact_match"}, threshold=1.0)
    assert reward(completions=["ab", "abcdefgh"], answer=["ab", "xy"]) == [pytest.approx(0.75), -0.5]
    with pytest.raises(ConfigError, match="no_such_reward"):
        get_reward("cosine_length", max_length=4, correct="no_such_reward")


@pytest.mark.parametrize("max_len,cache", [(100, 20), (16, 16), (50, 1), (10, 7)])
def test_soft_overlong_equals_trl(max_len, cache):
    from trl.rewards import get_soft_overlong_punishment

    ids = [[0] * n for n in range(0, 2 * max_len + 3)]
    theirs = get_soft_overlong_punishment(max_completion_len=max_len, soft_punish_cache=cache)(ids)
    reward = get_reward("brevity", mode="soft_overlong", max_length=max_len, cache=cache, unit="tokens")
    assert reward(completions=[""] * len(ids), completion_ids=ids) == pytest.approx(theirs)
    assert min(theirs) == -1.0 and max(theirs) == 0.0
