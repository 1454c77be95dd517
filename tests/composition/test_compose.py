import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardkit import (
    ConfigError,
    DataError,
    ExpressionError,
    Reward,
    RewardError,
    RewardParams,
    UnknownNameError,
    compose,
    get_reward,
    hookimpl,
)
from rewardkit.composition import expr
from rewardkit.composition.composed import Composed
from tests.conftest import INF, NAN, Ctx, Row, raises, rewards_spec, row_context, row_ids, run_row

SEED = "(bertscore + em + (format + 3*rouge1)/2)/3"


def four(combine=SEED, **extra):
    # Four cheap stand-in components under the seed formula's aliases.
    return {
        "rewards": {
            "bertscore": {"use": "exact_match", "casefold": True},
            "em": {"use": "exact_match"},
            "format": {"use": "format_regex", "pattern": r"^\w+$"},
            "rouge1": {"use": "brevity", "max_length": 10},
        },
        "combine": combine,
        **extra,
    }


def test_seed_formula_flattens_to_weights():
    composed = compose(four())
    assert composed.weights == pytest.approx({"bertscore": 1 / 3, "em": 1 / 3, "format": 1 / 6, "rouge1": 1 / 2})
    funcs, weights = composed.to_trl()
    assert [f.__name__ for f in funcs] == ["bertscore", "em", "format", "rouge1"]
    assert weights == pytest.approx([1 / 3, 1 / 3, 1 / 6, 1 / 2])


def test_composed_equals_weighted_sum_of_components():
    composed = compose(four())
    kwargs = {"completions": ["Paris", "paris", "two words"], "answer": ["Paris"] * 3}
    parts = composed.score_components(**kwargs)
    expected = [
        (parts["bertscore"][i] + parts["em"][i] + (parts["format"][i] + 3 * parts["rouge1"][i]) / 2) / 3
        for i in range(3)
    ]
    assert composed(**kwargs) == pytest.approx(expected)
    funcs, weights = composed.to_trl()
    trl_total = [sum(w * f(**kwargs)[i] for f, w in zip(funcs, weights)) for i in range(3)]
    assert trl_total == pytest.approx(expected)


def test_weights_form_and_default_weight():
    composed = compose({"em": {"use": "exact_match", "weight": 2}, "short": {"use": "brevity", "max_length": 4}})
    assert composed.weights == {"em": 2.0, "short": 1.0}
    assert composed(completions=["ab"], answer=["ab"]) == [2.5]


def test_nonlinear_expression_is_one_function_that_logs_components():
    composed = compose(four("min(em, format) + max(bertscore, rouge1)"), name="total")
    assert composed.weights is None
    funcs, weights = composed.to_trl()
    assert funcs == [composed] and weights == [1.0]
    logged = {}
    out = composed(completions=["Paris", "x y"], answer=["Paris", "Paris"], log_metric=logged.__setitem__)
    assert out == pytest.approx([2.0, 0.7])
    assert set(logged) == {f"rewards/total/{a}/mean" for a in ("bertscore", "em", "format", "rouge1")}
    assert logged["rewards/total/em/mean"] == 0.5


def test_constant_term_is_not_flattened():
    composed = compose({"rewards": {"em": "exact_match"}, "combine": "em + 1"})
    assert composed.weights is None
    assert composed(completions=["a"], answer=["a"]) == [2.0]


def test_clip_and_division():
    composed = compose(
        {
            "rewards": {"em": "exact_match", "b": {"use": "brevity", "max_length": 4}},
            "combine": "clip(em - b, 0, 1) / 2",
        }
    )
    assert composed(completions=["ab", "abcd"], answer=["ab", "x"]) == [0.25, 0.0]


def test_division_by_zero_component_gives_none():
    composed = compose({"rewards": {"em": "exact_match"}, "combine": "1 / em"})
    assert composed(completions=["a", "b"], answer=["a", "a"]) == [1.0, None]


def test_none_policies():
    spec = {"rewards": {"em": "exact_match", "m": "math_exact_match"}, "combine": "em + m"}
    kwargs = {"completions": ["5", "x"], "answer": ["5", "no number"]}
    assert compose(spec)(**kwargs) == [2.0, 0.0]  # zero: like TRL's nansum
    assert compose({**spec, "none": "propagate"})(**kwargs) == [2.0, None]
    only_none = compose({"rewards": {"m": "math_exact_match"}})
    assert only_none(completions=["1"], answer=["none"]) == [None]


def test_composed_pickles():
    composed = compose(four())
    clone = pickle.loads(pickle.dumps(composed))
    kwargs = {"completions": ["Paris"], "answer": ["Paris"]}
    assert clone(**kwargs) == composed(**kwargs)


def test_spec_files(tmp_path):
    yaml_file = tmp_path / "spec.yaml"
    yaml_file.write_text("rewards:\n  em: {use: exact_match}\n  m: {use: math_exact_match}\ncombine: (em + m) / 2\n")
    toml_file = tmp_path / "spec.toml"
    toml_file.write_text(
        'combine = "(em + m) / 2"\n[rewards.em]\nuse = "exact_match"\n[rewards.m]\nuse = "math_exact_match"\n'
    )
    for path in (yaml_file, str(toml_file)):
        assert compose(path)(completions=["5"], answer=["5.0"]) == [0.5]


def test_spec_syntax_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rewards:\n  em: {use: exact_match\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3:1: YAML syntax error"):
        compose(bad)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text('[rewards.em]\nuse = "exact_match\n')
    with pytest.raises(ConfigError, match=r"bad.toml: TOML syntax error.*line 2"):
        compose(bad_toml)
    with pytest.raises(ConfigError, match="the file does not exist"):
        compose(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "spec,error,match",
    [
        ({"em": {"use": "exact_match", "weight": -1}}, ConfigError, "weight: -1 is not a finite"),
        ({"em": {"use": "exact_match", "weight": float("nan")}}, ConfigError, "weight: nan is not a finite"),
        ({"em": {"use": "exact_match", "weight": "2"}}, ConfigError, "weight: '2' is not a finite"),
        ({"em": {"use": "exact_matc"}}, UnknownNameError, "Did you mean 'exact_match'"),
        ({"em": {"use": "exact_match", "casfold": True}}, ConfigError, "Did you mean 'casefold'"),
        ({"em": {"weight": 1}}, ConfigError, "needs 'use"),
        ({"rewards": {"em": "exact_match"}, "combine": "em + bleu"}, ExpressionError, "unknown alias 'bleu'"),
        ({"rewards": {"em": "exact_match", "x": "exact_match"}, "combine": "em"}, ConfigError, "declared but not used"),
        ({"rewards": {"em": {"use": "exact_match", "weight": 2}}, "combine": "em"}, ConfigError, "both `combine`"),
        ({"rewards": {"em": "exact_match"}, "combine": "em", "none": "skip"}, ConfigError, "none: 'skip'"),
        ({"rewards": {"em": "exact_match"}, "extra": 1}, ConfigError, "unknown top-level keys"),
        ({"rewards": {"my-em": "exact_match"}}, ConfigError, "must be an identifier"),
        ({"rewards": {"min": "exact_match"}}, ConfigError, "must be an identifier"),
        ({"rewards": {}}, ConfigError, "no rewards"),
        (42, ConfigError, "expected a dict"),
    ],
)
def test_spec_errors(spec, error, match):
    with pytest.raises(error, match=match):
        compose(spec)


def _returns(value_for: Callable[[int], Any]) -> Callable:
    def reward(completions, **kwargs):
        return value_for(len(completions))

    return reward


# A plugin's rewards returning what TRL would choke on (or, worse, silently accept).
BAD_OUTPUTS = {
    "hk_short": lambda n: [1.0] * (n - 1),
    "hk_long": lambda n: [1.0] * (n + 1),
    "hk_str": lambda n: ["1.0"] * n,
    "hk_bool": lambda n: [True] * n,
    "hk_inf": lambda n: [INF] * n,
    "hk_neg_inf": lambda n: [-INF] * n,
    "hk_np_str": lambda n: [np.str_("1.0")] * n,
    "hk_np_bool": lambda n: [np.True_] * n,
    "hk_complex": lambda n: [np.complex128(1 + 2j)] * n,
    "hk_huge_int": lambda n: [10**400] * n,
    "hk_not_a_list": lambda n: None,
    "hk_dict": lambda n: {i: 1.0 for i in range(n)},
    "hk_nan": lambda n: [NAN] * n,  # documented: NaN is None ("not applicable")
    "hk_np_float": lambda n: [np.float32(0.5)] * n,  # numpy numbers are numbers
}


class RawOutput(Reward):
    """A plugin reward that overrides __call__ (no base-class checks): only compose stands between it and TRL."""

    name = "hk_raw"

    class Params(RewardParams):
        output: str

    def __call__(self, completions=None, **kwargs):
        return BAD_OUTPUTS[self.params.output](len(completions))


class OutputsPlugin:
    @hookimpl
    def register_rewards(self, register):
        register("hk_raw", RawOutput)
        for name, value_for in BAD_OUTPUTS.items():  # the same outputs from plain TRL-style functions
            func = _returns(value_for)
            func.__name__ = name
            register(name, func)


def use_output(name: str, n: int = 2, raw: bool = True) -> Callable[[Ctx], Any]:
    """Compose a plugin reward returning BAD_OUTPUTS[name] (raw: a Reward overriding __call__; else a function)."""

    def run(c):
        c.plugin(OutputsPlugin(), "hk-outputs")
        component = {"use": "hk_raw", "output": name} if raw else {"use": name}
        composed = compose(rewards_spec({"p": component, "em": "exact_match"}))
        return composed(completions=["a"] * n, answer=["a"] * n)

    return run


BAD_INPUTS = [
    # 4. Every component's output is checked in compose: list, length, float-or-None, finite; errors name it.
    Row(
        "component-returns-n-1-scores",
        use_output("hk_short"),
        raises(RewardError, r"Component 'p' returned 1 scores for 2 completions"),
    ),
    Row("component-returns-n+1-scores", use_output("hk_long"), raises(RewardError, r"'p' returned 3 scores for 2")),
    Row("component-returns-string", use_output("hk_str"), raises(RewardError, r"'p' returned '1.0' \(str\)")),
    Row("component-returns-bool", use_output("hk_bool"), raises(RewardError, r"'p' returned True \(bool\)")),
    Row("component-returns-inf", use_output("hk_inf"), raises(RewardError, r"'p' returned inf .*must be finite")),
    Row("component-returns-minus-inf", use_output("hk_neg_inf"), raises(RewardError, r"'p' returned -inf")),
    Row("component-returns-numpy-string", use_output("hk_np_str"), raises(RewardError, r"'p' returned .*\(str_\)")),
    Row("component-returns-numpy-bool", use_output("hk_np_bool"), raises(RewardError, r"'p' returned .*\(bool_?\)")),
    Row("component-returns-complex", use_output("hk_complex"), raises(RewardError, r"'p' returned .*complex128")),
    Row(
        "component-returns-int-beyond-float",
        use_output("hk_huge_int"),
        raises(RewardError, r"'p' returned an integer too large"),
    ),
    Row(
        "component-returns-none-not-a-list",
        use_output("hk_not_a_list"),
        raises(RewardError, r"Component 'p' returned NoneType, not a list"),
    ),
    Row("component-returns-dict", use_output("hk_dict"), raises(RewardError, r"Component 'p' returned dict")),
    Row(
        "function-reward-returns-numpy-string",
        use_output("hk_np_str", raw=False),
        raises(RewardError, r"Reward 'p' returned .*\(str_\)"),
    ),
    Row(
        "function-reward-returns-int-beyond-float",
        use_output("hk_huge_int", raw=False),
        raises(RewardError, r"Reward 'p' returned an integer too large"),
    ),
    Row(
        "raw-callable-component-short-list",
        lambda c: Composed({"raw": lambda **kw: [1.0]}, expr.parse("raw", {"raw"}))(completions=["a", "b"]),
        raises(RewardError, r"Component 'raw' returned 1 scores for 2 completions"),
    ),
]


@pytest.mark.parametrize("row", BAD_INPUTS, ids=row_ids(BAD_INPUTS))
def test_bad_input(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run_row(row, tmp_path, monkeypatch, capsys)


def test_output_checks_do_not_overreach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """What the output checks must leave alone: documented values and numpy numbers."""
    with row_context(tmp_path, monkeypatch, capsys) as ctx:
        assert use_output("hk_nan")(ctx) == [1.0, 1.0]  # NaN from a reward is None ("not applicable")
        assert use_output("hk_np_float")(ctx) == [1.5, 1.5]  # numpy numbers are numbers
        assert use_output("hk_np_float", raw=False)(ctx) == [1.5, 1.5]
        by_zero = compose(rewards_spec({"a": "exact_match", "b": "exact_match"}, combine="a / b"))
        assert by_zero(completions=["x", "y"], answer=["x", "x"]) == [1.0, None]  # a row dividing by 0 is None
        with pytest.raises(DataError, match="got no completion_ids"):
            get_reward("brevity", max_length=5, unit="tokens")(completions=["a"])


def _huge(completions: list[str], **kwargs: Any) -> list[float]:
    return [1e308 for _ in completions]


def test_huge_finite_scores_are_summarised_and_logged_without_overflow():
    """Two finite 1e308 scores: their mean is 1e308 (fmean's sum overflowed: a traceback in `score`, `select`
    and every logged training step)."""
    from rewardkit.composition.scoring import score_rows

    composed = compose({"rewards": {"a": {"use": _huge}, "e": {"use": "exact_match", "reference": "answer"}}})
    logged: dict[str, float] = {}
    composed(completions=["4", "5"], answer=["4", "4"], log_metric=logged.__setitem__)
    assert logged[f"rewards/{composed.__name__}/a/mean"] == 1e308
    scores = score_rows(composed, [{"completion": "4", "answer": "4"}, {"completion": "5", "answer": "4"}])
    assert scores.summary()[0]["mean"] == 1e308
