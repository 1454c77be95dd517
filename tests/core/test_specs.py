"""Spec files (YAML, JSON, TOML): alias bombs, deep nesting, duplicate keys and bad bytes are one ConfigError; fuzzed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import (
    ConfigError,
    compose,
)
from rewardkit.core.specs import load_file, parse_yaml
from tests.conftest import (
    FUZZ_FAST,
    Row,
    fast,
    only_rewardkit_errors,
    raises,
    returns,
    row_ids,
    run_row,
    warm_up_before_deadlines,
)

warm_up_before_deadlines()  # the plugins and the ROUGE scorer load here, outside FUZZ_FAST's deadline


def bomb(levels: int, width: int = 9, small: bool = False) -> str:
    """The issue's alias bomb: `width ** levels` views from a few hundred bytes, all inside `completion_view`."""
    view = "&a0 [" + ", ".join(["boxed"] * width) + "]"
    for i in range(1, levels):  # each level: its first item defines the anchor the others repeat
        view = f"&a{i} [{view}, " + ", ".join([f"*a{i - 1}"] * (width - 1)) + "]"
    text = f"rewards:\n  em: {{use: exact_match, completion_view: {view}}}\n"
    assert not small or len(text) < 600, len(text)  # the was 369 bytes
    return text


BAD_INPUTS = [
    # 5. YAML alias bombs and deep documents: refused early, in well under a second.
    Row(
        "yaml-alias-bomb-9-deep-in-completion_view",
        lambda c: compose(str(c.write("bomb.yaml", bomb(9, small=True)))),
        fast(5, raises(ConfigError, r"bomb\.yaml: the document expands to more than 200000 values")),
    ),
    Row(
        "yaml-alias-bomb-through-mappings-and-merge-keys",
        lambda c: parse_yaml(
            "b0: &b0 {k0: 1, k1: 1, k2: 1, k3: 1, k4: 1, k5: 1, k6: 1, k7: 1, k8: 1, k9: 1}\n"
            + "".join(
                f"b{i}: &b{i} {{<<: *b{i - 1}, " + ", ".join(f"k{j}: *b{i - 1}" for j in range(10)) + "}\n"
                for i in range(1, 9)
            ),
            "w",
        ),
        fast(5, raises(ConfigError, r"expands to more than")),
    ),
    Row("yaml-recursive-alias", lambda c: parse_yaml("a: &a [*a]\n", "w"), raises(ConfigError, r"refers to itself")),
    Row(
        "yaml-nested-150-deep",
        lambda c: parse_yaml("a: " + "[" * 150 + "]" * 150, "w"),
        raises(ConfigError, r"nested deeper than 100"),
    ),
    Row(
        "yaml-nested-100k-deep",
        lambda c: parse_yaml("[" * 100_000 + "]" * 100_000, "w"),  # was minutes
        fast(1, raises(ConfigError, r"w: line 1: the document is nested deeper than 100 levels")),
    ),
    Row(
        "yaml-block-nested-150-deep",
        lambda c: parse_yaml("a:\n" + "".join("  " * i + "- \n" for i in range(1, 150)), "w"),
        raises(ConfigError, r"nested deeper than 100"),
    ),
    # 5. Duplicate keys are refused, naming the key and the line.
    Row(
        "yaml-duplicate-top-level-key",
        lambda c: load_file(c.write("d.yaml", "rewards:\n  em: exact_match\ncombine: em\ncombine: 2*em\n")),
        raises(ConfigError, r"d\.yaml: line 4: duplicate key 'combine' \(first at line 3\)"),
    ),
    Row(
        "yaml-duplicate-nested-key",
        lambda c: compose(str(c.write("d.yaml", "rewards:\n  em: {use: exact_match}\n  em: {use: brevity}\n"))),
        raises(ConfigError, r"line 3: duplicate key 'em' \(first at line 2\)"),
    ),
    Row(
        "yaml-duplicate-key-in-flow-mapping",
        lambda c: parse_yaml("a: {use: x, use: y}", "w"),
        raises(ConfigError, r"duplicate key 'use'"),
    ),
    Row(
        "yaml-duplicate-key-spelled-differently",
        lambda c: parse_yaml("1: a\n0x1: b\n", "w"),
        raises(ConfigError, r"line 2: duplicate key 1"),
    ),
    Row(
        "json-duplicate-key",
        lambda c: load_file(c.write("d.json", '{\n  "rewards": {"em": "exact_match"},\n  "rewards": {}\n}')),
        raises(ConfigError, r"d\.json: line 3: duplicate key 'rewards' \(first at line 2\)"),
    ),
    # 5 (YAML/JSON/TOML files): every hostile file is one ConfigError naming it; valid JSON is read as JSON.
    Row(
        "yaml-integer-over-4300-digits",
        lambda c: parse_yaml("max_length: " + "9" * 5000, "w"),
        raises(ConfigError, r"w: line 1: the integer 9+\.\.\. has 5000 digits"),
    ),
    Row(
        "toml-integer-over-4300-digits",
        lambda c: load_file(c.write("big.toml", "a = " + "9" * 5000)),
        raises(ConfigError, r"big\.toml: invalid TOML value"),
    ),
    Row(
        "json-integer-over-4300-digits",
        lambda c: load_file(c.write("big.json", '{"a": ' + "9" * 5000 + "}")),
        raises(ConfigError, r"big\.json: invalid JSON value"),
    ),
    Row(
        "yaml-nul-character",
        lambda c: parse_yaml('a: 1\nb: "x\x00"', "w"),
        raises(ConfigError, r"w:2: character U\+0000 is not allowed"),
    ),
    Row(
        "yaml-unhashable-key",
        lambda c: parse_yaml("? [a, b]\n: 1\n", "w"),
        raises(ConfigError, r"a mapping key must be a plain value"),
    ),
    Row(
        "yaml-not-utf8",
        lambda c: load_file(c.write_bytes("b.yaml", b"a: \xff")),
        raises(ConfigError, r"b\.yaml:1: not valid UTF-8"),
    ),
    Row("spec-path-is-a-directory", lambda c: load_file(c.mkdir("dir.yaml")), raises(ConfigError, r"is a directory")),
    Row(
        "yaml-exponent-without-dot-is-a-number",
        lambda c: parse_yaml("a: 1e-5\nb: 2.5E3\nc: 1.2.3\n", "w"),
        returns({"a": 1e-5, "b": 2500.0, "c": "1.2.3"}),
    ),
    Row(
        "json-exponent-is-a-number",
        lambda c: load_file(c.write("x.json", '{"weight": 1e-3, "n": 2E2}')),
        returns({"weight": 0.001, "n": 200.0}),
    ),
    Row(
        "json-indented-with-tabs",
        lambda c: load_file(c.write("t.json", '{\n\t"rewards": {\n\t\t"em": "x"\n\t}\n}')),
        returns({"rewards": {"em": "x"}}),
    ),
    Row(
        "json-surrogate-pair-escape",
        lambda c: load_file(c.write("s.json", '{"name": "\\ud83d\\ude00"}')),
        returns({"name": "\U0001f600"}),
    ),
    Row(
        "json-nan-token",
        lambda c: load_file(c.write("n.json", '{"weight": NaN}')),
        raises(ConfigError, r"n\.json: invalid JSON value \(NaN is not JSON"),
    ),
    Row(
        "json-syntax-error-names-line",
        lambda c: load_file(c.write("j.json", '{\n  "a": 1,\n}')),
        raises(ConfigError, r"j\.json:\d+:\d+: JSON syntax error"),
    ),
    Row(
        "json-nested-100k-deep",
        lambda c: load_file(c.write("deep.json", "[" * 100_000 + "]" * 100_000)),
        raises(ConfigError, r"deep\.json: the document is nested too deeply"),
    ),
    Row(
        "json-nested-150-deep",
        lambda c: load_file(c.write("d150.json", '{"a": ' + "[" * 150 + "]" * 150 + "}")),
        raises(ConfigError, r"nested deeper than 100"),
    ),
    Row(
        "toml-nested-100k-deep",
        lambda c: load_file(c.write("deep.toml", "a = " + "[" * 100_000 + "]" * 100_000)),
        raises(ConfigError, r"deep\.toml: the document is nested too deeply"),
    ),
]


@pytest.mark.parametrize("row", BAD_INPUTS, ids=row_ids(BAD_INPUTS))
def test_bad_input(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run_row(row, tmp_path, monkeypatch, capsys)


FILES_FAST = settings(FUZZ_FAST, max_examples=100)


_FILES = tempfile.TemporaryDirectory(prefix="rewardkit-fuzz-")  # removed at exit


FILES = Path(_FILES.name)


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
