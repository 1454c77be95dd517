"""Rewards given as Python callables or import paths: the contract of a registered function reward, in TRL too."""

import asyncio
import json
import sys

import pytest

from rewardkit import compose
from rewardkit.core.errors import ConfigError, RewardError
from tests.conftest import TESTS

sys.path.insert(0, str(TESTS))
from inline_rewards_pkg import rewards as user  # noqa: E402


def test_every_kind_of_callable_is_a_component():
    r = compose(
        {
            "rewards": {
                "em": {"use": "exact_match", "reference": "answer"},
                "lb": user.length_bonus,
                "half": user.half_length,
                "one": user.has_digit_one,
                "n": {"use": user.async_length},
            },
            "combine": "em + lb + half + one + 0.01*n",
        }
    )
    # em: 1/0; lb: len/10; half: len/20; one: contains "1"; n: len
    assert r(completions=["42", "41 "], answer=["42", "42"]) == pytest.approx(
        [1 + 0.2 + 0.1 + 0 + 0.02, 0 + 0.3 + 0.15 + 1 + 0.03]
    )
    # TRL logs each component under its alias (partials unwrapped, instances named too)
    assert [f.__name__ for f in r.to_trl()[0]] == ["em", "lb", "half", "one", "n"]


def test_async_reward_inside_a_running_event_loop():
    r = compose({"n": user.async_length})

    async def call():
        return r(completions=["abc"])

    assert asyncio.run(call()) == [3.0]


def test_callable_gets_views_none_and_on_error_policies():
    r = compose(
        {
            "rewards": {
                "lb": {"use": user.length_bonus, "completion_view": "boxed", "missing": "none"},
                "f": {"use": user.fails_on_bang, "on_error": "none"},
            }
        }
    )
    parts = r.score_components(completions=[r"\boxed{12345}", "no box !"])
    assert parts == {"lb": [0.5, None], "f": [1.0, None]}
    with pytest.raises(RewardError, match="failed on completion 0"):
        compose({"f": user.fails_on_bang})(completions=["!"])


def test_import_paths_module_and_file(tmp_path, monkeypatch):
    monkeypatch.chdir(TESTS)
    by_module = compose({"lb": {"use": "inline_rewards_pkg.rewards:length_bonus"}})
    assert by_module(completions=["abcde"]) == [0.5]
    by_file = compose({"one": {"use": "inline_rewards_pkg/rewards.py:has_digit_one"}})
    assert by_file(completions=["a1", "b"]) == [1.0, 0.0]


def test_import_path_with_timeout_pickles_to_the_worker(monkeypatch):
    monkeypatch.chdir(TESTS)
    r = compose({"lb": {"use": "inline_rewards_pkg.rewards:length_bonus", "timeout": 30}})
    assert r(completions=["abcdefghij"]) == [1.0]


@pytest.mark.parametrize(
    "entry, message",
    [
        (lambda completions: [1.0], r"does not accept \*\*kwargs.*def my_reward\(completions, \*\*kwargs\)"),
        (user.Contains, "got a class"),
        ({"use": "os:system"}, "part of Python or of an installed package"),
        ({"use": "yaml:safe_load"}, "part of Python or of an installed package"),
        ({"use": "no_such_module_here.sub:f"}, r"no module 'no_such_module_here.sub'"),
        ({"use": "inline_rewards_pkg.rewards:nope"}, r"has no 'nope'.*length_bonus"),
        ({"use": "./no_such_file.py:f"}, "no file './no_such_file.py'"),
        ({"use": "inline_rewards_pkg.rewards:functools"}, "not one of the accepted|has no|imported into"),
        ({"use": user.length_bonus, "unknown": 1}, "unknown key"),
    ],
)
def test_bad_callables_are_refused_clearly(entry, message, monkeypatch):
    monkeypatch.chdir(TESTS)
    with pytest.raises(ConfigError, match=message) as info:
        compose({"rewards": {"x": entry}})
    assert "rewards.x" in str(info.value) and "Hint:" in str(info.value)


def test_a_file_that_is_not_a_python_module_is_refused_clearly(tmp_path, monkeypatch):
    (tmp_path / "rewards.txt").write_text("def f(completions, **kwargs):\n    return [1.0]\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError,
        match=r"rewards.x: use './rewards.txt:f': './rewards.txt' is not a Python "
        r"module file.*Hint:",
    ):
        compose({"rewards": {"x": {"use": "./rewards.txt:f"}}})


def test_import_failure_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "broken_rewards.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"importing 'broken_rewards' failed: RuntimeError: boom"):
        compose({"x": {"use": "broken_rewards:f"}})


@pytest.mark.slow
def test_inline_reward_trains_through_grpotrainer(tiny_lm_dir, tmp_path):
    """rewardkit.train.run(config_dict) with a Python function in `rewards:`: GRPOTrainer logs it by alias."""
    from rewardkit.train import run

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+1=", "answer": str(i + 1)}) + "\n" for i in range(8)))
    config = {
        "stage": "grpo",
        "model": str(tiny_lm_dir),
        "output_dir": str(tmp_path / "not-used"),
        "dataset": {"path": str(data)},
        "rewards": {
            "rewards": {
                "em": {"use": "exact_match", "reference": "answer"},
                "lb": user.length_bonus,
                "one": user.has_digit_one,
            },
            "combine": "em + 0.1*lb + 0.5*one",
        },
        "trainer": {
            "max_steps": 2,
            "per_device_train_batch_size": 4,
            "num_generations": 4,
            "max_completion_length": 4,
            "use_cpu": True,
            "bf16": False,
            "report_to": "none",
            "logging_steps": 1,
            "save_strategy": "no",
            "disable_tqdm": True,
        },
    }
    [result] = run(config, say=lambda line: None, output=tmp_path / "run")  # output= wins over output_dir
    assert result.steps == 2
    record = json.loads((tmp_path / "run/rewardkit_stage.json").read_text())
    # the JSON record names the callables by import path
    assert record["config"]["rewards"]["rewards"]["lb"] == "inline_rewards_pkg.rewards:length_bonus"
    state = json.loads((tmp_path / "run/rewardkit_stage.json").read_text())
    assert state["steps"] == 2 and not (tmp_path / "not-used").exists()


@pytest.mark.slow
def test_inline_rewards_logged_by_alias_in_grpotrainer(tiny_lm_dir, tmp_path, trainer_defaults):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    composed = compose(
        {
            "rewards": {"lb": user.length_bonus, "half": user.half_length, "n": user.async_length},
            "combine": "lb + half + 0.01*n",
        }
    )
    funcs, weights = composed.to_trl()
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        reward_weights=weights,
        **{**trainer_defaults, "max_steps": 2},
    )
    trainer = GRPOTrainer(
        model=str(tiny_lm_dir),
        reward_funcs=funcs,
        args=args,
        train_dataset=Dataset.from_list([{"prompt": f"{i}+1="} for i in range(4)]),
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logs) == 2
    for h in logs:
        lb, half = h["rewards/lb/mean"], h["rewards/half/mean"]
        assert half == pytest.approx(lb / 2, abs=1e-6)  # the partial's scale=0.5 was applied
        assert h["reward"] == pytest.approx(lb + half + 0.01 * h["rewards/n/mean"], abs=1e-5)
