"""The `combine` expression: bad expressions refused at compose time, and a fuzzer over expressions and values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import (
    ExpressionError,
    RewardError,
    compose,
)
from rewardkit.composition import expr
from rewardkit.composition.composed import Composed
from tests.conftest import (
    BREVITY,
    FUZZ_FAST,
    Row,
    only_rewardkit_errors,
    raises,
    rewards_spec,
    row_ids,
    run_row,
    warm_up_before_deadlines,
)

warm_up_before_deadlines()  # the plugins and the ROUGE scorer load here, outside FUZZ_FAST's deadline

BAD_INPUTS = [
    # 4. Overflow in combine is an error (row scores are finite); a constant that overflows is refused up front.
    Row(
        "combine-overflow-linear",
        lambda c: compose(rewards_spec({"a": BREVITY, "b": "exact_match"}, combine="1e308*a + 1e308*b"))(
            completions=["a"], answer=["a"]
        ),
        raises(RewardError, r"combine '1e308\*a \+ 1e308\*b' overflowed"),
    ),
    Row(
        "combine-overflow-nonlinear-inf-minus-inf",
        lambda c: compose(
            rewards_spec({"a": BREVITY, "b": "exact_match"}, combine="max(1e308*a + 1e308*b - (1e308*a + 1e308*b), 0)")
        )(completions=["a"], answer=["a"]),
        raises(RewardError, r"overflowed"),
    ),
    Row(
        "combine-overflow-in-min-max-clip",
        lambda c: compose(rewards_spec({"a": BREVITY, "b": "exact_match"}, combine="clip(1e308*a * 10*b, 0, 1)"))(
            completions=["a"], answer=["a"]
        ),
        raises(RewardError, r"overflowed"),
    ),
    Row(
        "combine-constant-overflows",
        lambda c: compose(rewards_spec({"a": BREVITY}, combine="1e200*1e200*a")),
        raises(ExpressionError, r"constant part that overflows"),
    ),
    Row(
        "combine-weight-multiplies-out-to-inf",
        lambda c: compose(rewards_spec({"a": BREVITY}, combine="1e200*(1e200*a)")),
        raises(ExpressionError, r"weight that is not a finite number"),
    ),
    Row(
        "combine-integer-literal-beyond-float",
        lambda c: compose(rewards_spec({"a": BREVITY}, combine="1" * 400 + "*a")),
        raises(ExpressionError, r"number too large for a float"),
    ),
    Row(
        "combine-a/0",
        lambda c: compose(rewards_spec({"a": BREVITY}, combine="a/0")),
        raises(ExpressionError, r"divides by a constant zero"),
    ),
    Row(
        "combine-a/(1-1)",
        lambda c: compose(rewards_spec({"a": BREVITY}, combine="a/(1-1)")),
        raises(ExpressionError, r"divides by a constant zero"),
    ),
    Row(
        "combine-constant-0/0-inside-max",
        lambda c: compose(rewards_spec({"a": BREVITY}, combine="max(a, 0/0)")),
        raises(ExpressionError, r"divides by a constant zero"),
    ),
    Row(
        "combine-5",
        lambda c: compose(rewards_spec({"a": BREVITY}, combine=5)),
        raises(ExpressionError, r"must be an expression string, got int"),
    ),
    Row(
        "combine-a-list",
        lambda c: compose(rewards_spec({"a": BREVITY}, combine=["a"])),
        raises(ExpressionError, r"must be an expression string, got list"),
    ),
    # A combine that scores every row the same (issue 25): crossed or equal constant clip bounds, all weights 0.
    Row(
        "combine-clip-lo-above-hi",
        lambda c: compose(rewards_spec({"a": BREVITY}, combine="clip(a, 1, 0)")),
        raises(ExpressionError, r"clip\(a, 1, 0\) has its lower bound 1 above its upper bound 0"),
    ),
    Row(
        "combine-clip-lo-equals-hi-computed",
        lambda c: compose(rewards_spec({"a": BREVITY}, combine="clip(a, 2*0.25, 1/2)")),
        raises(ExpressionError, r"lower bound 0.5 equal to its upper bound 0.5"),
    ),
    Row(
        "combine-clip-bounds-from-rewards-cross-on-a-row",
        lambda c: compose(rewards_spec({"a": BREVITY, "b": "exact_match"}, combine="clip(a, a, b)"))(
            completions=["abc"], answer=["x"]
        ),
        raises(RewardError, r"combine: clip\(a, a, b\): the lower bound 0.7 is above the upper bound 0"),
    ),
    Row(
        "combine-every-weight-0",
        lambda c: compose(rewards_spec({"a": BREVITY, "b": "exact_match"}, combine="0*a + (b - b)")),
        raises(ExpressionError, r"multiplies every reward by 0, so every row would score 0"),
    ),
]


@pytest.mark.parametrize("row", BAD_INPUTS, ids=row_ids(BAD_INPUTS))
def test_bad_input(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run_row(row, tmp_path, monkeypatch, capsys)


TOKENS = st.sampled_from(
    [
        "a",
        "b",
        "c",
        "x",
        "+",
        "-",
        "*",
        "/",
        "(",
        ")",
        ",",
        " ",
        "0",
        "1",
        "2.5",
        "1e308",
        "1e-308",
        "1e999",
        "9" * 400,
        "min(",
        "max(",
        "clip(",
        "**",
        "//",
        "%",
        "not ",
        "<",
        "lambda: ",
        "__import__('os')",
        "a.b",
        "a[0]",
        "True",
        "'s'",
        "\\",
        "\n",
        "if",
    ]
)


EXPR_TEXT = st.one_of(st.lists(TOKENS, max_size=40).map("".join), st.text(max_size=80))


ALIASES = {"a", "b", "c"}


def _expr(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["min", "max"]), st.lists(children, min_size=2, max_size=4)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
        st.tuples(children, children, children).map(lambda t: f"clip({t[0]}, {t[1]}, {t[2]})"),
        children.map(lambda c: f"-{c}"),
    )


EXPR_TREES = st.recursive(
    st.sampled_from(["a", "b", "c", "0", "1", "0.5", "1e200", "1e308", "1e-300", "3"]), _expr, max_leaves=25
)


VALUES = st.one_of(
    st.none(),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e308, -1e308, 5e-324]),
    st.floats(allow_nan=False, allow_infinity=False),
)


@FUZZ_FAST
@given(
    st.one_of(EXPR_TEXT, EXPR_TREES),
    st.lists(st.fixed_dictionaries({"a": VALUES, "b": VALUES, "c": VALUES}), min_size=1, max_size=4),
    st.sampled_from(["zero", "propagate"]),
)
def test_expression_parses_and_combines_to_finite_or_none_or_rewardkit_errors(text, rows, none):
    tree = only_rewardkit_errors(lambda: expr.parse(text, ALIASES))
    if tree is None:
        return
    linear = expr.linear_form(tree)  # flattened weights (what TRL gets) are finite
    assert linear is None or all(math.isfinite(v) for v in (*linear[0].values(), linear[1]))
    used = expr.aliases(tree)
    if not used:  # a spec's combine uses every declared reward, and a spec declares at least one
        return
    composed = Composed({alias: None for alias in sorted(used)}, tree, none=none, text=text)
    scores = {alias: [row[alias] for row in rows] for alias in sorted(used)}
    for combined in (
        lambda: composed.combine(scores),
        lambda: [composed.combine_row({a: row[a] for a in sorted(used)}) for row in rows],
    ):
        try:
            out = combined()
        except RewardError:  # overflow: a clear error, never inf/NaN in a score
            continue
        assert len(out) == len(rows) and all(v is None or math.isfinite(v) for v in out), out


@pytest.mark.parametrize(
    "text,match",
    [
        ("__import__('os').system('x')", "the call"),
        ("em.__class__", "Attribute"),
        ("em ** 2", "operator Pow"),
        ("em // 2", "operator FloorDiv"),
        ("em if em else 1", "IfExp"),
        ("[em][0]", "Subscript"),
        ("lambda: 1", "Lambda"),
        ("abs(em)", "the call abs"),
        ("min(em, x=1)", "the call min"),
        ("clip(em, 0)", "exactly 3"),
        ("'a' + em", "constant 'a'"),
        ("True + em", "constant True"),
        ("em +", "syntax error"),
        ("", "empty"),
        ("1e999 * em", "non-finite"),
        ("not em", "operator Not"),
    ],
)
def test_expression_rejections(text, match):
    with pytest.raises(ExpressionError, match=match):
        expr.parse(text, {"em"})


def test_linear_form():
    tree = expr.parse("(a + 2*b)/4 - 0.5*a + -b", {"a", "b"})
    coeffs, const = expr.linear_form(tree)
    assert coeffs == pytest.approx({"a": -0.25, "b": -0.5}) and const == 0
    assert expr.linear_form(expr.parse("a * b", {"a", "b"})) is None
    assert expr.linear_form(expr.parse("a / b", {"a", "b"})) is None
    with pytest.raises(ExpressionError, match="divides by a constant zero"):
        expr.parse("a / 0", {"a"})


values = st.floats(min_value=-100, max_value=100, allow_nan=False)


@st.composite
def linear_exprs(draw, depth=0):
    if depth > 3 or draw(st.booleans()):
        return draw(st.sampled_from(["a", "b", "c", "2", "0.5", "3"]))
    op = draw(st.sampled_from(["+", "-", "*", "/"]))
    left = draw(linear_exprs(depth + 1))
    if op in "*/":
        return f"({left}) {op} {draw(st.sampled_from(['2', '4', '0.25']))}"
    return f"({left}) {op} ({draw(linear_exprs(depth + 1))})"


@settings(max_examples=200, deadline=None)
@given(linear_exprs(), values, values, values)
def test_linear_form_agrees_with_evaluation(text, a, b, c):
    try:
        tree = expr.parse(text, {"a", "b", "c"})
    except ExpressionError as exc:  # `(c/2)*2 - c`: every weight cancels to 0, refused
        assert "multiplies every reward by 0" in str(exc)
        return
    coeffs, const = expr.linear_form(tree)
    env = {"a": a, "b": b, "c": c}
    direct = expr.evaluate(tree, env)
    flat = const + sum(coeffs.get(k, 0) * v for k, v in env.items())
    assert math.isclose(direct, flat, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab()+-*/.,0123456789 minaxclp_", max_size=30))
def test_parser_only_raises_expression_error(text):
    try:
        tree = expr.parse(text, {"a", "b"})
    except ExpressionError:
        return
    try:
        result = expr.evaluate(tree, {"a": 0.5, "b": 2.0})
    except expr.CrossedBounds:  # clip(x, b, a): bounds from the rewards crossed on this row
        return
    assert isinstance(result, float)
