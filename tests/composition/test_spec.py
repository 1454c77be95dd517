"""The compose spec as one model: shapes normalised at load, presets adjusted, models found through ModelRef."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import pytest
from pydantic import Field

from rewardkit import (
    ConfigError,
    compose,
    hookimpl,
)
from rewardkit.api import load_compose_spec
from rewardkit.composition.spec import ComposeSpec
from rewardkit.core.plugins import register_plugin, unregister_plugin
from rewardkit.core.validation import ModelRef, stage_ref
from rewardkit.models import spec_models
from rewardkit.rewards.base import Reward, RewardParams
from tests.conftest import BREVITY, Row, raises, rewards_spec, row_ids, run_row

SHAPES = [
    {"em": "exact_match", "b": {"use": "brevity", "max_length": 5}},
    {"rewards": {"em": {"use": "exact_match"}, "b": {"use": "brevity", "max_length": 5}}},
    {"rewards": {"em": "exact_match", "b": {"use": "brevity", "max_length": 5, "weight": 1.0}}, "none": "zero"},
]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_accepted_shape_normalises_to_one_spec(shape):
    spec = ComposeSpec.parse(shape)
    assert spec.rewards == {
        "em": {"use": "exact_match", "name": "em"},
        "b": {"use": "brevity", "max_length": 5, "name": "b"},
    }
    assert spec.combine == "1.0*em + 1.0*b"
    assert ComposeSpec.parse(spec.to_dict()) == spec  # normalising twice changes nothing


def test_preset_with_set_from_yaml_form_and_overrides():
    spec = load_compose_spec(
        {"preset": "blog", "set": {"bertscore.model_type": "./my-bert", "bertscore.num_layers": 2}},
        overrides=["rouge1.reference=gold"],
    )
    assert spec.rewards["bertscore"]["model_type"] == "./my-bert" and spec.rewards["bertscore"]["num_layers"] == 2
    assert spec.rewards["rouge1"]["reference"] == "gold"
    assert spec.where == "preset 'blog'"
    with pytest.raises(ConfigError, match=r"no reward 'bertt'.*aliases here: em, rouge1, bertscore"):
        load_compose_spec({"preset": "blog", "set": {"bertt.model_type": "x"}})
    with pytest.raises(ConfigError, match="weights are folded into `combine`"):
        load_compose_spec("blog", overrides=["em.weight=2"])
    with pytest.raises(ConfigError, match=r"\{preset: <name or file>, set:"):
        load_compose_spec({"preset": "blog", "combine": "em"})


def test_train_set_adjusts_a_preset_instead_of_refusing_it(tmp_path):
    from rewardkit.train.config import load_stages
    from rewardkit.train.preflight import named_models

    config = {
        "stage": "grpo",
        "model": "m",
        "dataset": {"generator": "arithmetic"},
        "rewards": "blog",
        "callbacks": [{"name": "best_checkpoint", "spec": "official"}],
    }
    [stage], _, _ = load_stages(
        config, ["rewards.bertscore.model_type=./my-bert", "callbacks.0.spec.bertscore.model_type=./other"]
    )
    assert stage.rewards == {"preset": "blog", "set": {"bertscore.model_type": "./my-bert"}}
    keys = {key: value for key, value, _ in named_models(stage)}
    assert keys["rewards.bertscore.model_type"] == "./my-bert"
    assert keys["callbacks[0].spec.bertscore.model_type"] == "./other"
    # the YAML form of the same change
    [stage], _, _ = load_stages({**config, "rewards": {"preset": "blog", "set": {"bertscore.model_type": "./y"}}})
    assert {k: v for k, v, _ in named_models(stage)}["rewards.bertscore.model_type"] == "./y"


class Judge(Reward):
    """A plugin reward naming a model of its own: preflight, --smoke and `@stage` find it through ModelRef."""

    name = "edge_judge"

    class Params(RewardParams):
        judge: Annotated[str, ModelRef("model", tiny="bert", smoke=(("layers", 2),))] = Field(min_length=1)
        judge_tokenizer: Annotated[Optional[str], ModelRef("tokenizer")] = None
        layers: int = 12

    def score(self, completion, reference):
        return 0.0


class JudgePlugin:
    @hookimpl
    def register_rewards(self, register):
        register(Judge.name, Judge)


@pytest.fixture
def judge_plugin():
    register_plugin(JudgePlugin(), name="edge-judge")
    yield
    unregister_plugin("edge-judge")


def test_plugin_models_are_found_checked_swapped_and_resolved(judge_plugin, tiny_lm_dir, tmp_path, monkeypatch):
    from rewardkit.train.config import load_stages
    from rewardkit.train.preflight import check_models, named_models
    from rewardkit.train.smoke import _swap_spec
    from rewardkit.train.smoke_models import Tiny
    from rewardkit.train.stage_rewards import handoff_dir, reward_spec

    spec = {"j": {"use": "edge_judge", "judge": "some-org/judge-model", "judge_tokenizer": "./tok"}}
    found = [(m.alias, m.field, m.value, m.ref.kind) for m in spec_models(load_compose_spec(spec))]
    assert found == [("j", "judge", "some-org/judge-model", "model"), ("j", "judge_tokenizer", "./tok", "tokenizer")]
    stage_cfg = {"stage": "grpo", "model": str(tiny_lm_dir), "dataset": {"generator": "arithmetic"}, "rewards": spec}
    [stage], _, where = load_stages(stage_cfg)
    assert ("rewards.j.judge", "some-org/judge-model", "model") in named_models(stage)
    with pytest.raises(
        ConfigError,
        match=r"rewards.j.judge 'some-org/judge-model' is neither a local folder nor in "
        r"the Hugging Face cache.*Hint: use a local folder",
    ):
        check_models([stage], where)
    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path / "cache"))
    notes: list[str] = []
    swapped = _swap_spec(spec, "rewards", "grpo", Tiny(""), notes)
    assert swapped["rewards"]["j"]["judge"].startswith(str(tmp_path / "cache"))
    assert swapped["rewards"]["j"]["layers"] == 2 and "judge_tokenizer" not in swapped["rewards"]["j"]
    assert any("rewards.j.judge some-org/judge-model -> tiny local BERT" in n for n in notes)
    # `@rm` in a plugin's model field is a pipeline reference, resolved like reward_model's
    piped = {
        "output_dir": str(tmp_path / "p"),
        "pipeline": [
            {"stage": "rm", "model": "m", "dataset": {"generator": "arithmetic"}},
            {
                "stage": "grpo",
                "model": "m",
                "dataset": {"generator": "arithmetic"},
                "rewards": {"j": {"use": "edge_judge", "judge": "@rm"}},
            },
        ],
    }
    stages, _, where = load_stages(piped)
    assert reward_spec(stages[1], stages[:1], where)["rewards"]["j"]["judge"] == handoff_dir(stages[0])


def test_one_parser_of_stage_references():
    assert [stage_ref(v) for v in ("@sft", "@", "sft", None, "a@b")] == ["sft", None, None, None, None]


def test_score_with_a_missing_model_fails_fast_with_the_preflight_hint(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"completion": "a", "answer": "a"}\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rewardkit",
            "score",
            "official",
            "-i",
            str(rows),
            "--set",
            "bertscore.model_type=./no-such-bert",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "rewards.bertscore.model_type './no-such-bert' does not exist" in proc.stderr
    assert "rewardkit tiny DIR --bert" in proc.stderr


def test_compose_accepts_a_composespec_and_does_not_share_it():
    spec = ComposeSpec.parse({"b": {"use": "brevity", "max_length": 4}})
    r = compose(spec, overrides={"b.max_length": 8})
    assert r(completions=["x" * 4]) == [0.5] and spec.rewards["b"]["max_length"] == 4


BAD_INPUTS = [
    Row(
        "weight-null",
        lambda c: compose(rewards_spec({"a": {**BREVITY, "weight": None}})),
        raises(ConfigError, r"rewards\.a\.weight: None is not a finite number"),
    ),
]


@pytest.mark.parametrize("row", BAD_INPUTS, ids=row_ids(BAD_INPUTS))
def test_bad_input(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run_row(row, tmp_path, monkeypatch, capsys)


def test_huge_integer_weight_is_a_config_error():
    with pytest.raises(ConfigError, match="weight: .* is not a finite number"):
        compose({"a": {"use": "exact_match", "weight": 10**400}})
