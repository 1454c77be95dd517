"""Edges found by reviewing the new core: each test fails on the code before its fix."""

from __future__ import annotations

import pytest

import rewardkit
from rewardkit import ConfigError, compose, get_preset, get_reward, get_view, hookimpl
from rewardkit.core.plugins import register_plugin, unregister_plugin


class LazyPlugin:
    @hookimpl
    def register_rewards(self, register):
        register("edge_lazy_brevity", "rewardkit.rewards.length_rewards:Brevity")  # no params=: the class has them

    @hookimpl
    def register_presets(self, register):
        register("edge_preset", {"rewards": {"em": {"use": "exact_match"}}})


@pytest.fixture
def lazy_plugin():
    register_plugin(LazyPlugin(), name="edge-lazy")
    yield
    unregister_plugin("edge-lazy")


def test_lazy_reward_without_params_is_validated_by_its_own_params(lazy_plugin):
    reward = get_reward("edge_lazy_brevity", max_length=10)
    assert reward(completions=["x" * 5]) == [0.5]
    with pytest.raises(ConfigError, match="max_lenght: unknown key. Did you mean 'max_length'"):
        get_reward("edge_lazy_brevity", max_lenght=10)


def test_preset_copies_are_deep(lazy_plugin):
    get_preset("edge_preset")["rewards"]["em"]["use"] = "changed"
    assert get_preset("edge_preset")["rewards"]["em"]["use"] == "exact_match"


def test_tuple_columns_follow_the_scored_rows():
    reward = get_reward("brevity", max_length=5, unit="tokens", completion_view="boxed")
    # the second completion has no \\boxed{}: it is not scored, and its token ids must go with it
    assert reward(completions=[r"\boxed{1}", "none"], completion_ids=([1, 2], [1, 2, 3])) == [0.6, 0.0]


def test_huge_integer_weight_is_a_config_error():
    with pytest.raises(ConfigError, match="weight: .* is not a finite number"):
        compose({"a": {"use": "exact_match", "weight": 10**400}})


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


def test_best_dir_may_not_be_the_sidecar_or_the_adapters_folder():
    spec = {"rewards": {"em": {"use": "exact_match"}}}
    for clash in ("inference", "adapters", "./inference"):
        with pytest.raises(ConfigError, match="best_dir: .* which copying the best adapter would replace"):
            rewardkit.get_callback("best_checkpoint", spec=spec, best_dir=clash)


def test_generation_of_an_empty_shard_needs_no_chat_template():
    from rewardkit.callbacks.inference import generate_texts

    assert generate_texts(object(), object(), []) == []  # a rank with no prompts never touches model or tokenizer


def test_failed_scaffold_leaves_no_folder_behind(tmp_path, monkeypatch):
    from rewardkit.cli import scaffold
    from rewardkit.core.fileio import atomic_write_text

    calls = []

    def third_write_fails(path, text):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return atomic_write_text(path, text)

    monkeypatch.setattr(scaffold, "atomic_write_text", third_write_fails)
    with pytest.raises(OSError):
        scaffold.new_plugin("edgeprobe", tmp_path)
    assert list(tmp_path.iterdir()) == []  # a retry is not refused as "already exists"
