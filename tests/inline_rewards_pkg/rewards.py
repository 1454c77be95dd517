"""User reward functions that the tests name by import path (`use: inline_rewards_pkg.rewards:length_bonus`)."""

import functools


def length_bonus(completions, **kwargs):
    return [min(len(c), 10) / 10 for c in completions]


def scaled_length(completions, scale=1.0, **kwargs):
    return [scale * min(len(c), 10) / 10 for c in completions]


half_length = functools.partial(scaled_length, scale=0.5)


class Contains:
    """A callable instance (picklable: defined at module level)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self, completions, **kwargs):
        return [float(self.text in c) for c in completions]


has_digit_one = Contains("1")


async def async_length(completions, **kwargs):
    return [float(len(c)) for c in completions]


def fails_on_bang(completions, **kwargs):
    if any("!" in c for c in completions):
        raise ValueError("! is not allowed")
    return [1.0] * len(completions)
