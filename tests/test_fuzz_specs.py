"""Fuzzing the spec loader, the `combine` expression parser and the view chain (issue 11).

Every example must finish fast (a per-example deadline, sizes bounded by the strategies) and either succeed or
raise a rewardkit error (a `RewardkitError` subclass) - never a raw `ValueError`, `RecursionError`,
`OverflowError`, `TypeError` or a YAML/JSON/TOML library exception. Generated documents include aliases (so
alias bombs), duplicate keys, tags, control characters, huge integers and deep nesting.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardkit import RewardError, RewardkitError, compose, get_reward, get_view
from rewardkit.composition import expr
from rewardkit.composition.composed import Composed
from rewardkit.core.plugins import get_registry
from rewardkit.core.specs import load_file, parse_yaml

# Outside the per-example deadline: load the plugins and the ROUGE scorer once.
get_registry()
get_reward("rouge1")(completions=["a"], answer=["a"])

# The whole file runs in well under 20 s on a busy 2-core machine; each example must finish within the deadline.
DEADLINE = timedelta(seconds=2)
FAST = settings(max_examples=150, deadline=DEADLINE, suppress_health_check=[HealthCheck.too_slow])
FILES_FAST = settings(FAST, max_examples=100)
_FILES = tempfile.TemporaryDirectory(prefix="rewardkit-fuzz-")  # removed at exit
FILES = Path(_FILES.name)


def only_rewardkit_errors(call):
    """call(); a RewardkitError is a fine answer, anything else fails the example."""
    try:
        return call()
    except RewardkitError:
        return None


# --- the spec loader --------------------------------------------------------------------------------------------
SCALARS = st.sampled_from(
    [
        "1",
        "-0",
        "1e-5",
        "2.5E3",
        "1.2.3",
        ".inf",
        "-.inf",
        ".nan",
        "0x1F",
        "0o17",
        "1_000",
        "null",
        "~",
        "yes",
        "on",
        "off",
        "'q'",
        '"x"',
        '"\\u0000"',
        '"\\ud83d"',
        "2001-12-14",
        "!!binary aGk=",
        "!!set {a, b}",
        "!!python/name:os.system",
        "!!python/object/apply:os.system ['id']",
        "!!str 1",
        "!!int x",
        "!!float y",
        "9" * 5000,
        "-" + "9" * 4301,
        "1" + "0" * 400,
        "1e999",
        "''",
        "|",
        ">",
        "%",
        "@x",
        "`x`",
        "\t",
        "x\x00",
        "x\x07",
        "\ufeff",
        "*k0",
        "*k1",
        "*k3",
        "*nope",
        "&k9 1",
        "boxed",
        "exact_match",
        "[]",
        "{}",
    ]
)
KEYS = st.sampled_from(
    [
        "use",
        "view",
        "rewards",
        "combine",
        "a",
        "a",
        "b",
        "1",
        "0x1",
        "yes",
        "on",
        "null",
        "<<",
        "? [x]",
        "[x]",
        "{x: 1}",
        "'a'",
        '"a"',
        "*k0",
        "&k8 k",
    ]
)


def _flow(children):
    items = st.lists(children, max_size=6).map(lambda xs: "[" + ", ".join(xs) + "]")
    pairs = st.lists(st.tuples(KEYS, children), max_size=6).map(
        lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
    )
    return st.one_of(items, pairs)


NODES = st.recursive(SCALARS, _flow, max_leaves=40)


def _document(lines: list[tuple[str, str, bool]]) -> str:
    # Anchored top-level values (&k0, &k1, ...) that later values refer to: aliases, and so alias bombs.
    return (
        "\n".join(
            f"k{i}: {'&k' + str(i) + ' ' if anchor else ''}{node}" if key == "k" else f"{key}: {node}"
            for i, (key, node, anchor) in enumerate(lines)
        )
        + "\n"
    )


DOCUMENTS = st.lists(st.tuples(st.one_of(st.just("k"), KEYS), NODES, st.booleans()), min_size=1, max_size=10).map(
    _document
)
# Nesting deeper than the bound, written in flow and block style.
DEEP = st.one_of(
    st.integers(90, 100_000).map(lambda n: "a: " + "[" * n + "]" * n),
    st.integers(90, 400).map(lambda n: "a:\n" + "".join("  " * (i + 1) + "- \n" for i in range(n))),
)
# Alias bombs of any width and depth (width ** depth values from a few hundred bytes).
BOMBS = st.builds(
    lambda width, depth: (
        "\n".join(
            ["b0: &b0 [" + ", ".join(["x"] * width) + "]"]
            + [f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * width) + "]" for i in range(1, depth)]
        )
        + "\n"
    ),
    st.integers(2, 12),
    st.integers(2, 12),
)


@FILES_FAST
@given(st.one_of(DOCUMENTS, DEEP, BOMBS, st.text(max_size=300)))
def test_parse_yaml_succeeds_or_raises_a_rewardkit_error(text):
    data = only_rewardkit_errors(lambda: parse_yaml(text, "fuzz.yaml"))
    if isinstance(data, dict):  # what a loaded spec holds is then bounded too
        assert _size(data) <= 200_000


def _size(value, depth=0) -> int:
    assert depth <= 101
    if isinstance(value, dict):
        return 1 + sum(_size(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_size(v, depth + 1) for v in value)
    return 1


JSON_ATOMS = st.sampled_from(
    [
        "1",
        "-0",
        "1e-3",
        "1E400",
        "-1e400",
        "NaN",
        "Infinity",
        "-Infinity",
        "9" * 5000,
        "true",
        "null",
        '"a"',
        '"\\ud83d\\ude00"',
        '"\\ud800"',
        '"\\u0000"',
        '"\t"',
        "01",
        "'a'",
        "[",
        "}",
        "",
    ]
)
JSON_TEXT = st.recursive(
    JSON_ATOMS,
    lambda ch: st.one_of(
        st.lists(ch, max_size=5).map(lambda xs: "[" + ",\t".join(xs) + "]"),
        st.lists(st.tuples(st.sampled_from(['"a"', '"a"', '"b"', '"use"', "a", "1"]), ch), max_size=5).map(
            lambda kv: "{\n\t" + ",\n\t".join(f"{k}: {v}" for k, v in kv) + "\n}"
        ),
    ),
    max_leaves=30,
)
SUFFIXES = st.sampled_from([".yaml", ".yml", ".json", ".toml", ".txt"])
RAW = st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))


@FILES_FAST
@given(
    st.one_of(
        DOCUMENTS.map(str.encode),
        JSON_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
        DEEP.map(str.encode),
        BOMBS.map(str.encode),
        RAW,
    ),
    SUFFIXES,
)
def test_load_file_succeeds_or_raises_a_rewardkit_error(data, suffix):
    path = FILES / f"spec{suffix}"
    path.write_bytes(data)
    loaded = only_rewardkit_errors(lambda: load_file(path))
    assert loaded is None or isinstance(loaded, dict)


# --- the expression parser ----------------------------------------------------------------------------------------
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


@FAST
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


# --- the view chain -----------------------------------------------------------------------------------------------
PATTERNS = st.one_of(
    st.sampled_from(
        [
            r"(\d+)",
            r"(?P<x>a+)",
            r"(a+)+$",
            r"(a|aa)*b",
            "(",
            "a{99999999999}",
            "(?P<x>a)(?P=x)",
            r"\p{L}+",
            "(?i)A",
            "",
            "(a)" * 200,
            "[",
            r"(?<=a+)b",
        ]
    ),
    st.text(alphabet=list("ab()+*?|[]{}\\.^$<>P=0123456789,-"), max_size=16),
)
TIMEOUTS = st.sampled_from([0.001, 0.01, 0.05, -1, 0, math.nan, math.inf, 1e308, True, "0.1", None])
PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "pattern": PATTERNS,
        "group": st.sampled_from([0, 1, 2, -1, "x", "", True, None, 1.0]),
        "occurrence": st.sampled_from(["first", "last", "middle", 1]),
        "regex_timeout": TIMEOUTS,
        "flags": st.sampled_from([[], ["IGNORECASE"], ["dotall", "MULTILINE"], ["BOGUS"], "DOTALL", [5]]),
        "marker": st.one_of(st.text(max_size=4), st.sampled_from([None, 5])),
        "strip": st.sampled_from([True, False, 1, "yes"]),
        "bogus": st.just(1),
    },
)
NAMES = st.sampled_from(
    ["full", "boxed", "last_number", "regex", "after", "before", "after_think", "nope", "", "rewardkit:boxed", "a:b:c"]
)
ONE_VIEW = st.one_of(
    NAMES,
    st.builds(lambda name, params: {"view": name, **params}, NAMES, PARAMS),
    st.sampled_from([None, 5, 1.5, {"pattern": "a"}, {"view": None}, {"view": ["boxed"]}]),
)
CHAINS = st.recursive(ONE_VIEW, lambda ch: st.lists(ch, max_size=6), max_leaves=20)
TEXTS = st.one_of(st.text(max_size=200), st.sampled_from(["a" * 60 + "!", r"\boxed{" * 50 + "1", "x</think>2 3"]))


@FAST
@given(CHAINS, st.lists(TEXTS, min_size=1, max_size=3))
def test_view_chain_builds_and_runs_or_raises_a_rewardkit_error(spec, texts):
    view = only_rewardkit_errors(lambda: get_view(spec))
    if view is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a regex over its time budget warns and finds nothing
        for text in texts:
            out = view(text)
            assert out is None or isinstance(out, str)


@FAST
@given(
    CHAINS,
    st.sampled_from(["exact_match", "math_exact_match", "rouge1", "format_regex", "brevity"]),
    st.fixed_dictionaries(
        {},
        optional={
            "max_length": st.sampled_from([10, 0, True, "5", 5.0]),
            "pattern": PATTERNS,
            "regex_timeout": TIMEOUTS,
            "timeout": st.sampled_from([0, -1, math.inf, math.nan, True, "1"]),
            "weight": st.sampled_from([1, 0.5, None, -1, math.inf, True, "2"]),
            "missing": st.sampled_from(["zero", "none", None]),
        },
    ),
)
def test_a_reward_spec_with_any_view_chain_composes_and_scores_or_raises(chain, use, params):
    def run():
        composed = compose({"rewards": {"r": {"use": use, "completion_view": chain, **params}}})
        return composed(completions=["a \\boxed{1}", "aaaa" * 10 + "!"], answer=["1", None])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = only_rewardkit_errors(run)
    assert out is None or all(v is None or math.isfinite(v) for v in out)
