"""`workers: N`: a sync reward's batch split over N worker processes, with the same scores as in process."""

from __future__ import annotations

import os
import time

import pytest

from rewardkit import compose, get_reward
from rewardkit.rewards.function_rewards import FunctionReward
from rewardkit.rewards.worker_scoring import pool_of

WORDS = "the cat sat on a mat while every dog in town barked at the moon".split()
GOLDS = [" ".join(WORDS[i % 7 : i % 7 + 5 + i % 4]) for i in range(40)]
PREDS = [" ".join(reversed(WORDS[i % 5 : i % 5 + 3 + i % 6])) for i in range(40)]


def pid_rows(completions, **kwargs):
    return [float(os.getpid())] * len(completions)


def sleeps_on_slow(completions, **kwargs):
    if "slow" in completions:
        time.sleep(60)
    return [float(len(c)) for c in completions]


def test_workers_give_the_same_scores_as_in_process():
    in_process = get_reward("rouge1", reference="answer")(completions=PREDS, answer=GOLDS)
    split = get_reward("rouge1", reference="answer", workers=3)
    assert split(completions=PREDS, answer=GOLDS) == in_process  # bit for bit
    assert len(set(in_process)) > 5  # a varied batch, not all equal
    spec = {"rewards": {"r": {"use": "rouge1", "reference": "answer", "workers": 2}, "em": "exact_match"}}
    local = {"rewards": {"r": {"use": "rouge1", "reference": "answer"}, "em": "exact_match"}}
    assert compose(spec)(completions=PREDS, answer=GOLDS) == compose(local)(completions=PREDS, answer=GOLDS)


def test_a_batch_is_split_over_n_processes_and_none_reasons_follow():
    reward = FunctionReward(pid_rows, workers=3)
    pids = reward(completions=[str(i) for i in range(9)])
    assert len(set(pids)) == 3 and os.getpid() not in pids
    assert [len([p for p in pids if p == q]) for q in dict.fromkeys(pids)] == [3, 3, 3]  # contiguous chunks of 3
    pool_of(reward).close()


def test_timeout_bounds_each_chunk():
    reward = FunctionReward(sleeps_on_slow, workers=2, timeout=2.0)
    reward(completions=["warm", "up"])  # start both workers: the budget below excludes start-up
    start = time.monotonic()
    with pytest.warns(RuntimeWarning, match="exceeded its 2.0s budget on 2 completions"):
        got = reward(completions=["ab", "slow", "abc", "abcd"])
    assert time.monotonic() - start < 20
    assert got == [None, None, 3.0, 4.0]  # only the chunk holding the stuck row lost its scores
    assert reward.none_reasons == {"timeout": 2} and reward.timeout_count == 1
    assert reward(completions=["abcde"]) == [5.0]  # the killed worker was replaced
    pool_of(reward).close()


def test_workers_is_validated():
    with pytest.raises(Exception, match="workers"):
        get_reward("exact_match", workers=0)


def test_a_rewards_workers_exit_when_the_reward_is_gone():
    import gc

    reward = FunctionReward(pid_rows, workers=2, timeout=30)
    pids = set(reward(completions=["a", "b"]))
    assert len(pids) == 2
    del reward
    gc.collect()
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = {p for p in pids if os.path.exists(f"/proc/{p}") and "Z" not in _state(p)}
    assert not alive  # no idle process left per dropped reward


def _state(pid: float) -> str:
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().split(") ")[1][:1]
    except OSError:
        return "Z"
