"""Training configs: every bad value is rejected before any training starts, even in a later stage; `--set` paths."""

from __future__ import annotations

import math
import re

import pytest

from rewardkit import ConfigError
from rewardkit.train import run

PIPELINE = {
    "pipeline": [
        {"stage": "sft", "model": "m", "dataset": {"path": "x.jsonl"}},
        {"stage": "sft", "name": "b", "model": "m", "dataset": {"path": "x.jsonl"}},
    ]
}


@pytest.mark.parametrize(
    "key, expected",
    [
        ("pipeline.--1.name", "no item named '--1'"),
        ("pipeline.².name", "no item named '²'"),
        ("pipeline.١.name", "no item named '١'"),  # an Arabic-Indic digit one: not index 1
        ("pipeline.99999999999999999999.name", "index 99999999999999999999 is out of range (2 items)"),
    ],
    ids=["double-minus", "superscript-two", "arabic-indic-one", "huge"],
)
def test_set_indices_are_ascii_digits(key, expected):
    from rewardkit.core.errors import ConfigError
    from rewardkit.train.config import apply_overrides

    with pytest.raises(ConfigError, match=re.escape(f"--set {key.rsplit('.', 1)[0]}: {expected}")):
        apply_overrides(PIPELINE, [f"{key}=x"])
    assert apply_overrides(PIPELINE, ["pipeline.-1.name=x"])["pipeline"][1]["name"] == "x"


GOOD_REWARDS = {
    "rewards": {"acc": {"use": "math_exact_match"}, "short": {"use": "brevity", "max_length": 20}},
    "combine": "acc + 0.1*short",
}


def pipeline(tmp_path, model, grpo_changes):
    sft = {
        "stage": "sft",
        "model": str(model),
        "output_dir": str(tmp_path / "sft"),
        "dataset": {"generator": "arithmetic", "n": 16},
        "trainer": {"max_steps": 1, "report_to": "none", "use_cpu": True},
    }
    grpo = {
        "stage": "grpo",
        "model": "@sft",
        "output_dir": str(tmp_path / "grpo"),
        "dataset": {"generator": "arithmetic", "n": 16},
        "rewards": GOOD_REWARDS,
        "trainer": {
            "max_steps": 1,
            "report_to": "none",
            "use_cpu": True,
            "num_generations": 2,
            "per_device_train_batch_size": 2,
            "max_completion_length": 4,
        },
    }
    for key, value in grpo_changes.items():
        grpo[key] = value
    return {"pipeline": [sft, grpo]}


def rewards(**entries):
    return {"rewards": {**GOOD_REWARDS["rewards"], **entries}, "combine": GOOD_REWARDS["combine"]}


CASES = {
    "unknown reward": ({"rewards": rewards(x={"use": "no_such_reward"})}, "Unknown reward 'no_such_reward'"),
    "unknown reward parameter": (
        {"rewards": {"rewards": {"acc": {"use": "math_exact_match", "refrence": "a"}}}},
        "Did you mean 'reference'",
    ),
    "wrong parameter type": (
        {"rewards": {"rewards": {"s": {"use": "brevity", "max_length": "long"}}}},
        "max_length: Input should be a valid integer",
    ),
    "unknown view": (
        {"rewards": {"rewards": {"acc": {"use": "math_exact_match", "completion_view": "boxd"}}}},
        "Did you mean 'boxed'",
    ),
    "unknown tokenizer": (
        {"rewards": {"rewards": {"r": {"use": "rouge1", "tokenizer": "mecab"}}}},
        "Unknown tokenizer 'mecab'",
    ),
    "negative weight": ({"rewards": {"acc": {"use": "math_exact_match", "weight": -1}}}, "weight: -1 is not"),
    "NaN weight": ({"rewards": {"acc": {"use": "math_exact_match", "weight": math.nan}}}, "weight: nan is not"),
    "unknown alias": ({"rewards": {**GOOD_REWARDS, "combine": "acc + bleu"}}, "unknown alias 'bleu'"),
    "unsupported operator": ({"rewards": {**GOOD_REWARDS, "combine": "acc ** 2 + short"}}, "operator Pow"),
    "code in the expression": (
        {"rewards": {**GOOD_REWARDS, "combine": "__import__('os').getcwd() + acc + short"}},
        "the call __import__",
    ),
    "attribute access": ({"rewards": {**GOOD_REWARDS, "combine": "acc.real + short"}}, "Attribute"),
    "unknown callback": ({"callbacks": [{"name": "lora_sav"}]}, "Did you mean 'lora_save'"),
    "bad callback parameter": (
        {"callbacks": [{"name": "best_checkpoint", "spec": GOOD_REWARDS, "top_k": 0}]},
        "top_k: Input should be greater than or equal to 1",
    ),
    "callback escaping the output folder": (
        {"callbacks": [{"name": "best_checkpoint", "spec": GOOD_REWARDS, "best_dir": "../../elsewhere"}]},
        "escapes",
    ),
    "unknown trainer key": ({"trainer": {"max_step": 1}}, "Did you mean 'max_steps'"),
    "missing reference column": (
        {"rewards": {"rewards": {"acc": {"use": "math_exact_match", "reference": "solution"}}}},
        "solution",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rejected_before_training(case, tiny_lm_dir, tmp_path):
    changes, message = CASES[case]
    with pytest.raises(ConfigError, match=message) as info:
        run(pipeline(tmp_path, tiny_lm_dir, changes))
    assert "stage" in str(info.value) or "grpo" in str(info.value)
    assert not (tmp_path / "sft").exists(), "stage 1 started training before the bad stage 2 was rejected"


def test_wrong_trainer_value_type_rejected_before_training(tiny_lm_dir, tmp_path):
    cfg = pipeline(tmp_path, tiny_lm_dir, {})
    cfg["pipeline"][1]["trainer"]["learning_rate"] = "fast"
    # the shared validator's shape: <owner>: <field path>: <problem> (got ...). Hint: ...
    with pytest.raises(ConfigError, match=r"stage 'grpo': trainer\.learning_rate: .*\(got 'fast'\)\. Hint: "):
        run(cfg)
    assert not (tmp_path / "sft").exists()


def _no_loading(monkeypatch):
    """Make any model check or trainer construction fail the test: the config must be refused before them."""
    from rewardkit.train import pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("a model was checked or loaded before the config was rejected")

    monkeypatch.setattr(pipeline, "check_models", refuse)
    monkeypatch.setattr(pipeline, "build_trainer", refuse)


def test_nan_learning_rate_rejected_before_any_model_load(tmp_path, monkeypatch):
    _no_loading(monkeypatch)
    path = tmp_path / "nan.yaml"
    path.write_text(
        "pipeline:\n"
        "  - {stage: sft, model: ./no/such/model, dataset: {generator: arithmetic, n: 4}}\n"
        "  - {stage: dpo, model: '@sft', dataset: {generator: arithmetic, n: 4},\n"
        "     trainer: {learning_rate: .nan}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"pipeline\.1: trainer\.learning_rate is not a finite number"):
        run(str(path))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "/abs"])
def test_stage_name_that_is_a_path_is_rejected(name, tmp_path, monkeypatch):
    _no_loading(monkeypatch)
    cfg = {
        "output_dir": str(tmp_path / "run"),
        "pipeline": [{"stage": "sft", "name": name, "model": "m", "dataset": {"generator": "arithmetic"}}],
    }
    with pytest.raises(ConfigError, match="must be a plain name") as info:
        run(cfg)
    assert name in str(info.value)
    assert not (tmp_path / "run").exists() and not (tmp_path / "x").exists()
