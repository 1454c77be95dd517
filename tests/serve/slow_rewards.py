"""Rewards for the server tests: a reward that takes a while (requests in flight), one that fails on a word."""

import os
import time


def slow_len(completions, **kwargs):
    """len(completion) / 100, after sleeping SLOW_REWARD_SECONDS (default 1) per call."""
    time.sleep(float(os.environ.get("SLOW_REWARD_SECONDS", "1")))
    return [len(c) / 100 for c in completions]


def fails_on_boom(completions, **kwargs):
    """1.0, but raises on a completion containing 'boom'."""
    if any("boom" in c for c in completions):
        raise ValueError("boom")
    return [1.0] * len(completions)
