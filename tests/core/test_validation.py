"""Parameter validation: one problem under its own field name, and nested objects the builder cannot use."""

from __future__ import annotations

import pytest

from rewardkit import ConfigError, get_reward, get_view


def test_a_union_field_reports_one_problem_under_its_own_name():
    with pytest.raises(ConfigError) as info:
        get_view("regex", pattern="(a)", group=-1)
    message = str(info.value)
    assert "group: Input should be greater than or equal to 0 (got -1)" in message
    assert "constrained" not in message and message.count("group") == 1
    with pytest.raises(ConfigError, match=r"completion_view: not one of the accepted types \(str, dict, list"):
        get_reward("exact_match", completion_view=3)


def test_unusable_nested_object_is_refused_by_the_builder():
    with pytest.raises(ConfigError, match="tokenizer: expected a tokenizer name or a mapping, got int"):
        get_reward("rouge1", tokenizer=5)
