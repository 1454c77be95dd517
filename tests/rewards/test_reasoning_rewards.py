"""think_format against TRL's think_format_reward; tag_count and reasoning_steps against open-r1's definitions."""

import pytest

from rewardkit import ConfigError, get_reward

# Edge cases of TRL's regex ^<think>(?!.*<think>)(.*?)</think>.*$ (DOTALL | MULTILINE, re.match).
THINK_CASES = [
    "<think>\nreasoning\n</think>\nanswer",
    "<think></think>",
    "<think>a</think><think>b</think>",
    "<think>a<think>b</think>",
    " <think>a</think>",
    "\n<think>a</think>",
    "<think>a",
    "a</think>",
    "<think>a</think>\n\nmore\nlines</think>",
    "<THINK>a</THINK>",
    "",
    "<think>",
    "<think></think><think>",
    "<think>x\n</think>" + "y" * 10_000,
]


def test_think_format_equals_trl():
    from trl.rewards import think_format_reward

    theirs = think_format_reward([[{"role": "assistant", "content": c}] for c in THINK_CASES])
    assert get_reward("think_format")(completions=THINK_CASES) == theirs
    assert theirs.count(1.0) >= 3 and theirs.count(0.0) >= 8


def test_think_format_other_tag_and_hostile_text_is_fast():
    assert get_reward("think_format", tag="reasoning")(completions=["<reasoning>a</reasoning> b"]) == [1.0]
    import time

    start = time.perf_counter()
    assert get_reward("think_format")(completions=["<think>" + "<" * 200_000]) == [0.0]
    assert time.perf_counter() - start < 2.0
    with pytest.raises(ConfigError, match="tag"):
        get_reward("think_format", tag="<think>")


# open-r1's tag_count_reward: 0.25 per part present exactly once: "<think>\n", "\n</think>\n", "\n<answer>\n",
# "\n</answer>" (values worked out from its source, src/open_r1/rewards.py; open-r1 is not a package here).
@pytest.mark.parametrize(
    "text,expected",
    [
        ("<think>\nx\n</think>\n<answer>\n4\n</answer>", 1.0),
        ("<think>\nx\n</think>\n", 0.5),
        ("<think>x</think><answer>4</answer>", 0.0),
        ("<think>\n<think>\nx\n</think>\n<answer>\n4\n</answer>", 0.75),  # "<think>\n" twice: no credit
        ("\n<answer>\n4\n</answer>", 0.5),
        ("", 0.0),
    ],
)
def test_tag_count_open_r1(text, expected):
    assert get_reward("tag_count")(completions=[text]) == [expected]


# open-r1's reasoning_steps_reward: re.findall of (Step \d+:|^\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,)
# without MULTILINE, so "1." counts only at the very start; min(1, count / 3).
@pytest.mark.parametrize(
    "text,expected",
    [
        ("Step 1: a\nStep 2: b\nStep 3: c", 1.0),
        ("1. a\n2. b", 1 / 3),  # only the first "1." (^ is the start of the text)
        ("First, a. Second, b.", 2 / 3),
        ("- a\n- b\n- c", 2 / 3),  # the first bullet has no newline before it
        ("\n* a\n* b", 2 / 3),
        ("Step 10: x Next, y Finally, z and more First, w", 1.0),
        ("no steps here", 0.0),
        ("step 1: lower case", 0.0),
    ],
)
def test_reasoning_steps_open_r1(text, expected):
    assert get_reward("reasoning_steps")(completions=[text]) == [pytest.approx(expected)]
    assert get_reward("reasoning_steps", min_steps=1)(completions=[text]) == [1.0 if expected else 0.0]
