import pytest

from rewardkit import ConfigError, DataError, get_reward


def test_math_exact_match_forms():
    reward = get_reward("math_exact_match")
    completions = [r"so \boxed{\frac{1}{2}}", "It is 0.5.", "maybe 3", "", r"\boxed{0.50}", "1/2 apples"]
    assert reward(completions=completions, answer=["#### 0.5"] * 6) == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]


def test_math_exact_match_gold_forms():
    reward = get_reward("math_exact_match")
    golds = ["18", "#### 18", r"\boxed{18}", "18.0", "$18", "1,8"]
    assert reward(completions=["The total is 18"] * 6, answer=golds) == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    assert reward(completions=["0.1575"], answer=[r"\frac{63}{400}"]) == [1.0]


def test_math_never_evaluates_code():
    reward = get_reward("math_exact_match")
    assert reward(completions=["__import__('os').system('echo hi') 2+2"], answer=["4"]) == [0.0]


@pytest.mark.parametrize(
    "params,completion,gold,expected",
    [
        ({}, " Paris ", "Paris", 1.0),
        ({}, "paris", "Paris", 0.0),
        ({"casefold": True}, "paris", "Paris", 1.0),
        ({"remove_quotes": True}, '"Paris"', "Paris", 1.0),
        ({"collapse_whitespace": True}, "New   York", "New York", 1.0),
        ({}, "New   York", "New York", 0.0),
        ({"unicode": "NFKC"}, "ＡＢＣ", "ABC", 1.0),
        ({"alternatives": "#"}, "b", "a#b", 1.0),
        ({}, "b", "a#b", 0.0),
        ({"strip": False}, "a ", "a", 0.0),
    ],
)
def test_exact_match_normalization(params, completion, gold, expected):
    assert get_reward("exact_match", **params)(completions=[completion], answer=[gold]) == [expected]


def test_brevity_linear_chars_and_tokens():
    chars = get_reward("brevity", max_length=200)
    assert chars(completions=["x" * 50, "x" * 300, ""]) == [0.75, 0.0, 1.0]
    tokens = get_reward("brevity", max_length=4, unit="tokens")
    assert tokens(completions=["long text", "t"], completion_ids=[[1], [1, 2, 3, 4, 5]]) == [0.75, 0.0]
    with pytest.raises(DataError, match="completion_ids"):
        tokens(completions=["x"])


def test_brevity_soft_overlong():
    reward = get_reward("brevity", max_length=100, mode="soft_overlong", cache=20)
    out = reward(completions=["x" * n for n in (10, 80, 90, 100, 150)])
    assert out == [0.0, 0.0, -0.5, -1.0, -1.0]


def test_format_regex_modes_and_flags():
    text = "<think>a\nb</think> 42"
    assert get_reward("format_regex", pattern=r"</think>")(completions=[text]) == [1.0]
    assert get_reward("format_regex", pattern=r"</think>", mode="match")(completions=[text]) == [0.0]
    assert get_reward("format_regex", pattern=r"<think>.*</think> \d+", mode="fullmatch")(completions=[text]) == [0.0]
    assert get_reward("format_regex", pattern=r"<think>.*</think> \d+", mode="fullmatch", flags=["DOTALL"])(
        completions=[text]
    ) == [1.0]
    assert get_reward("format_regex", pattern=r"THINK", flags=["ignorecase"])(completions=[text]) == [1.0]


def test_format_regex_invalid_pattern_and_flag():
    with pytest.raises(ConfigError, match="Invalid regular expression"):
        get_reward("format_regex", pattern="(unclosed")
    with pytest.raises(ConfigError, match="Unknown regex flag 'WEIRD'"):
        get_reward("format_regex", pattern="a", flags=["WEIRD"])


def test_format_regex_catastrophic_pattern_is_bounded():
    import time

    reward = get_reward("format_regex", pattern=r"(a|aa)+$", regex_timeout=0.1)
    start = time.perf_counter()
    with pytest.warns(RuntimeWarning, match="took over 0.1s"):
        out = reward(completions=["a" * 80 + "b", "a" * 80 + "b", "aa"])
    assert out == [0.0, 0.0, 1.0]
    assert time.perf_counter() - start < 5
