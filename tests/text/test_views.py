import pickle

import pytest

from rewardkit import get_view as resolve_view
from rewardkit.core.errors import ConfigError, UnknownNameError
from rewardkit.text.numeric import last_boxed


@pytest.mark.parametrize(
    "spec,text,expected",
    [
        ("full", "abc", "abc"),
        ("boxed", r"a \boxed{1} b \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        ("boxed", "no box", None),
        ("boxed", r"\boxed{unbalanced", None),
        ("last_number", "3 apples and 4.5 pears", "4.5"),
        ("last_number", "none", None),
        ({"view": "regex", "pattern": r"Answer: (\w+)"}, "Answer: yes. Answer: no", "yes"),
        ({"view": "regex", "pattern": r"Answer: (\w+)", "occurrence": "last"}, "Answer: yes. Answer: no", "no"),
        ({"view": "regex", "pattern": r"(?P<a>\d+)", "group": "a"}, "x 12", "12"),
        ({"view": "regex", "pattern": r"\d+", "group": 0}, "x 12", "12"),
        ({"view": "after", "marker": "Answer:"}, "think. Answer:  42 ", "42"),
        ({"view": "after", "marker": "#", "occurrence": "last"}, "a#b#c", "c"),
        ({"view": "before", "marker": "가 옳다"}, '"나는"가 옳다. 이유', '"나는"'),
        ({"view": "after", "marker": "X"}, "no marker", None),
        ("after_think", "<think>1</think>a</think> final", "final"),
        ("after_think", "still thinking", None),
        (["after_think", "boxed"], r"<think>\boxed{1}</think> \boxed{2}", "2"),
        (["after_think", "boxed"], r"\boxed{1}", None),
    ],
)
def test_views(spec, text, expected):
    view = resolve_view(spec)
    assert view(text) == expected
    assert pickle.loads(pickle.dumps(view))(text) == expected


def test_nested_boxed():
    assert last_boxed(r"\boxed{\boxed{3}}") == "3"  # the last \boxed to start wins, as in math-verify
    assert last_boxed(r"\boxed {x}") == "x"


@pytest.mark.parametrize(
    "spec,match",
    [
        ("nope", "Unknown view 'nope'"),
        ("boxd", "Did you mean 'boxed'"),
        ({"marker": "x"}, "needs 'view: <name>'"),
        ({"view": "regex", "pattern": "("}, "Invalid regular expression"),
        ({"view": "regex", "pattern": "a", "group": 2}, "group: 2 does not exist"),
        ({"view": "after"}, "view 'after': marker: missing"),
        ({"view": "after", "marker": "x", "colour": 1}, "colour"),
        (3, "expected a view name or a mapping"),
    ],
)
def test_view_errors(spec, match):
    with pytest.raises((ConfigError, UnknownNameError), match=match):
        resolve_view(spec)


def test_regex_view_times_out_on_catastrophic_pattern():
    view = resolve_view({"view": "regex", "pattern": r"(a|aa)+$", "group": 0, "regex_timeout": 0.05})
    with pytest.warns(RuntimeWarning, match="took over"):
        assert view("a" * 60 + "b") is None
