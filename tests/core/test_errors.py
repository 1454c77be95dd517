"""Structured errors: parts (problem, where, hint) rendered in one place; context added on re-raise."""

import pickle

import pytest

import rewardkit
from rewardkit import ConfigError, UnknownNameError
from rewardkit.core.errors import Where
from rewardkit.core.validation import Params, validate


def test_parts_render_as_one_line():
    exc = ConfigError("must be > 0 (got -1)", owner="reward 'brevity'", path="max_length", hint="max_length: 200.")
    assert str(exc) == "reward 'brevity': max_length: must be > 0 (got -1). Hint: max_length: 200."
    assert exc.where == Where("reward 'brevity'", "max_length") and exc.hint == "max_length: 200."
    located = ConfigError("unknown key", owner="train", file="train.yaml", line=7)
    assert str(located) == "train.yaml:7: train: unknown key"


def test_a_finished_sentence_keeps_its_text_and_gains_its_parts():
    text = "Unknown reward 'x'. Did you mean 'y'? Available: y. Hint: check `rewardkit list`."
    exc = ConfigError(text)
    assert str(exc) == text and exc.args == (text,)
    assert (
        exc.problem == "Unknown reward 'x'. Did you mean 'y'? Available: y." and exc.hint == "check `rewardkit list`."
    )
    assert ConfigError("no hint here").hint is None


def test_within_adds_context_keeps_type_parts_and_pickles():
    with pytest.raises(UnknownNameError) as info:
        rewardkit.get_callback("no_such_callback")
    original = info.value
    wrapped = original.within("train.yaml", "stage 'grpo'", "callbacks[0] (no_such_callback)")
    assert type(wrapped) is UnknownNameError and wrapped.hint == original.hint
    assert str(wrapped) == f"train.yaml: stage 'grpo': callbacks[0] (no_such_callback): {original}"
    assert str(original).startswith("Unknown callback")  # the caught error itself is unchanged
    assert str(wrapped.within("outer")) == f"outer: {wrapped}"
    assert str(pickle.loads(pickle.dumps(wrapped))) == str(wrapped)  # worker processes send errors back


class Margin(Params):
    low: float
    high: float = 1.0


def test_validate_reports_owner_and_field_path():
    with pytest.raises(ConfigError) as info:
        validate(Margin, {"low": "a"}, "view 'margin'", hint="low: 0.5.")
    exc = info.value
    assert exc.where.owner == "view 'margin'" and exc.where.path == "low" and exc.hint == "low: 0.5."
    assert str(exc) == "view 'margin': low: Input should be a valid number (got 'a'). Hint: low: 0.5."
    with pytest.raises(ConfigError) as several:
        validate(Margin, {"high": "b", "x": 1}, "view 'margin'")
    assert several.value.where.path is None  # several fields: each path is inside the problem text
    assert "low: missing (required); high: " in str(several.value) and "x: unknown key" in str(several.value)
