"""`reward_model`: a trained sequence classifier as a reward, equal to TRL's own reward-model path."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

import rewardkit
from rewardkit import compose, get_reward
from rewardkit.core.errors import ConfigError, DataError

SYSTEM = {"role": "system", "content": "Solve it. End with the number alone."}
QUESTIONS = ["What is 2 + 3?", "What is 10 - 4?", "What is 7 * 6?"]
ANSWERS = ["5", "The answer is 6", "It is 42, I think.", "5", "", "no idea at all, sorry"]


@pytest.fixture(scope="module")
def tiny_rm_dir(tiny_lm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2ForSequenceClassification (num_labels=1) with the tiny LM's config and char tokenizer."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, Qwen2ForSequenceClassification

    path = tmp_path_factory.mktemp("tiny_rm")
    config = AutoConfig.from_pretrained(tiny_lm_dir, num_labels=1)
    torch.manual_seed(1)
    model = Qwen2ForSequenceClassification(config)
    with torch.no_grad():
        model.score.weight.mul_(50)  # logits of a few units, so sigmoid / standardize differ visibly from raw
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_lm_dir).save_pretrained(path)
    return path


def _rows(conversational: bool) -> tuple[list, list]:
    prompts, completions = [], []
    for i, answer in enumerate(ANSWERS):
        question = QUESTIONS[i % len(QUESTIONS)]
        if conversational:
            prompts.append([SYSTEM, {"role": "user", "content": question}])
            completions.append([{"role": "assistant", "content": answer}])
        else:
            prompts.append(f"Q: {question}\nA: ")
            completions.append(answer)
    return prompts, completions


@pytest.mark.slow
@pytest.mark.parametrize("conversational", [True, False], ids=["chat", "text"])
def test_equals_trl_reward_model_path(conversational, tiny_lm_dir, tiny_rm_dir, tmp_path, trainer_defaults):
    """GRPOTrainer._calculate_rewards with the model (TRL's path) and with the reward (rewardkit's), in one call."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    kwargs, weights = compose({"rm": {"use": "reward_model", "model": str(tiny_rm_dir), "weight": 0.5}}).to_trl_kwargs()
    assert weights == [0.5] and not isinstance(kwargs["reward_funcs"][0], rewardkit.Reward)
    # batch_size=4 forces rewardkit into two length-sorted batches; TRL scores all six rows at once.
    ours = get_reward("reward_model", model=str(tiny_rm_dir), batch_size=4, name="ours")
    prompts, completions = _rows(conversational)
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=6,
        num_generations=6,
        max_completion_length=4,
        **trainer_defaults,
    )
    trainer = GRPOTrainer(
        model=str(tiny_lm_dir),
        reward_funcs=kwargs["reward_funcs"] + [ours],
        reward_processing_classes=kwargs["reward_processing_classes"] + [None],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
    )
    assert trainer.reward_func_names == ["rm", "ours"]
    inputs = [{"prompt": p, "completion": c, "answer": "5"} for p, c in zip(prompts, completions)]
    rewards = trainer._calculate_rewards(inputs, prompts, completions, [[0]] * len(prompts))
    trl_scores, our_scores = rewards[:, 0], rewards[:, 1]
    diff = float((trl_scores - our_scores).abs().max())
    print(f"max |TRL - rewardkit| ({'chat' if conversational else 'text'}): {diff:.3g}")
    assert diff < 1e-5
    assert float(trl_scores.std()) > 0.1  # the rows really score differently
    assert rewards[0, 1] == rewards[3, 1]  # identical texts (scored once) give identical scores


def test_to_trl_kwargs_hands_over_the_model_only_when_trl_computes_the_same(tiny_rm_dir):
    from transformers import PreTrainedModel

    spec = {
        "em": {"use": "exact_match", "weight": 1.0},
        "rm": {"use": "reward_model", "model": str(tiny_rm_dir), "weight": 0.1},
    }
    kwargs, weights = compose(spec).to_trl_kwargs()
    em, model = kwargs["reward_funcs"]
    assert isinstance(model, PreTrainedModel) and model.config._name_or_path == "rm"
    assert kwargs["reward_processing_classes"][0] is None
    assert kwargs["reward_processing_classes"][1].pad_token_id == model.config.pad_token_id
    assert weights == compose(spec).to_trl()[1] == [1.0, 0.1]
    for change in (
        {"transform": "sigmoid"},
        {"completion_view": "last_number"},
        {"max_length": 32},
        {"device": "cpu"},
        {"batch_size": 4},
        {"on_error": "none"},
    ):
        kwargs, _ = compose({**spec, "rm": {**spec["rm"], **change}}).to_trl_kwargs()
        assert isinstance(kwargs["reward_funcs"][1], rewardkit.Reward), change
        assert kwargs["reward_processing_classes"] is None
    nonlinear = compose(
        {
            "rewards": spec | {"rm": {"use": "reward_model", "model": str(tiny_rm_dir)}, "em": {"use": "exact_match"}},
            "combine": "max(em, rm)",
        }
    )
    kwargs, weights = nonlinear.to_trl_kwargs()
    assert kwargs == {"reward_funcs": [nonlinear], "reward_processing_classes": None} and weights == [1.0]


def test_transforms_and_views(tiny_rm_dir):
    import math

    prompts, completions = _rows(conversational=True)
    raw = get_reward("reward_model", model=str(tiny_rm_dir))(prompts=prompts, completions=completions)
    sig = get_reward("reward_model", model=str(tiny_rm_dir), transform="sigmoid")(
        prompts=prompts, completions=completions
    )
    std = get_reward("reward_model", model=str(tiny_rm_dir), transform="standardize")(
        prompts=prompts, completions=completions
    )
    assert sig == pytest.approx([1 / (1 + math.exp(-x)) for x in raw])
    mean = sum(raw) / len(raw)
    sd = math.sqrt(sum((x - mean) ** 2 for x in raw) / len(raw))
    assert std == pytest.approx([(x - mean) / sd for x in raw], abs=1e-6)
    same = get_reward("reward_model", model=str(tiny_rm_dir), transform="standardize")
    assert same(prompts=[prompts[0]] * 2, completions=[completions[0]] * 2) == [0.0, 0.0]  # std 0 -> zeros
    # completion_view scores only the viewed part; a row where it finds nothing scores per `missing`.
    viewed = get_reward("reward_model", model=str(tiny_rm_dir), completion_view="last_number", missing="none")
    out = viewed(prompts=prompts[:3], completions=completions[:3])
    bare = get_reward("reward_model", model=str(tiny_rm_dir))(
        prompts=prompts[:3], completions=[[{"role": "assistant", "content": n}] for n in ("5", "6", "42")]
    )
    assert out == pytest.approx(bare, abs=1e-5)
    assert viewed(prompts=[prompts[0]], completions=[[{"role": "assistant", "content": "none"}]]) == [None]


def test_score_rows_jsonl_and_missing_prompts(tiny_rm_dir, tmp_path):
    from rewardkit.composition.scoring import score_rows
    from rewardkit.core.fileio import read_jsonl

    prompts, completions = _rows(conversational=False)
    path = tmp_path / "rows.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": p, "completion": c, "answer": "5"}) + "\n" for p, c in zip(prompts, completions)),
        encoding="utf-8",
    )
    composed = compose(
        {
            "rewards": {
                "em": {"use": "exact_match", "reference": "answer"},
                "rm": {"use": "reward_model", "model": str(tiny_rm_dir), "transform": "sigmoid"},
            },
            "combine": "(em + rm) / 2",
        }
    )
    rows = read_jsonl(path)
    scores = score_rows(composed, rows)
    direct = get_reward("reward_model", model=str(tiny_rm_dir), transform="sigmoid")(
        prompts=prompts, completions=completions
    )
    assert scores.components["rm"] == pytest.approx(direct)
    assert scores.combined[0] == pytest.approx((1.0 + direct[0]) / 2)
    with pytest.raises(DataError, match=r"reward_model 'rm' needs prompts.*Hint: add a 'prompt' field to each row"):
        score_rows(composed, [{k: v for k, v in row.items() if k != "prompt"} for row in rows])
    with pytest.raises(DataError, match=r"prompt 1 is missing.*Hint: add a 'prompt' field"):
        score_rows(composed, [rows[0], {"completion": "5", "answer": "5"}])


def test_pickles_without_the_model(tiny_rm_dir):
    reward = get_reward("reward_model", model=str(tiny_rm_dir))
    before = reward(prompts=["Q: 1+1?\nA: "], completions=["2"])
    blob = pickle.dumps(reward)
    assert len(blob) < 5000  # parameters only, never the weights
    assert pickle.loads(blob)(prompts=["Q: 1+1?\nA: "], completions=["2"]) == before


def test_parameter_errors(tiny_rm_dir):
    for params, message in [
        ({"device": "gpu"}, "device"),
        ({"reference": "answer"}, "not supported"),
        ({"timeout": 5.0}, "second copy"),
        ({"transform": "tanh"}, "transform"),
        ({"batch_size": 0}, "batch_size"),
    ]:
        with pytest.raises(ConfigError, match=message):
            get_reward("reward_model", model=str(tiny_rm_dir), **params)
    with pytest.raises(ConfigError, match=r"'@rm' names a pipeline stage.*Hint"):
        get_reward("reward_model", model="@rm")(prompts=["p"], completions=["c"])
    with pytest.raises(ConfigError, match=r"cannot load model .*Hint"):
        get_reward("reward_model", model=str(tiny_rm_dir / "nope"))(prompts=["p"], completions=["c"])


def _pipeline(stages: list[dict]) -> dict:
    return {"output_dir": "runs/p", "pipeline": stages}


def test_pipeline_resolves_rm_references():
    from rewardkit.train.config import load_stages
    from rewardkit.train.stage_rewards import handoff_dir, reward_spec

    rm_reward = {"rm": {"use": "reward_model", "model": "@rm", "weight": 0.1}, "em": {"use": "exact_match"}}
    cfg = _pipeline(
        [
            {"stage": "rm", "model": "m", "dataset": {"generator": "arithmetic"}},
            {"stage": "grpo", "model": "m", "dataset": {"generator": "arithmetic"}, "rewards": {"rewards": rm_reward}},
        ]
    )
    stages, _, where = load_stages(cfg)
    spec = reward_spec(stages[1], stages[:1], where)
    # the resolved spec is normalised: the weight lives in `combine`, each entry carries its alias as name
    assert spec["rewards"]["rm"] == {"use": "reward_model", "model": str(Path("runs/p/rm/final")), "name": "rm"}
    assert spec["combine"] == "0.1*rm + 1.0*em"
    assert stages[1].rewards["rewards"]["rm"]["model"] == "@rm"  # the stage's own config keeps the reference
    stages[0].peft = stages[1].peft  # None: final/; a LoRA rm stage hands over merged/
    assert handoff_dir(stages[0]).endswith("final")

    def error(grpo_rewards: dict, before: list[dict], after: list[dict] = ()) -> str:
        grpo = {"stage": "grpo", "model": "m", "dataset": {"generator": "arithmetic"}, "rewards": grpo_rewards}
        stages, _, where = load_stages(_pipeline([*before, grpo, *after]))
        with pytest.raises(ConfigError) as info:
            reward_spec(stages[len(before)], stages[: len(before)], where)
        return str(info.value)

    sft = {"stage": "sft", "model": "m", "dataset": {"generator": "arithmetic"}}
    rm = {"stage": "rm", "model": "m", "dataset": {"generator": "arithmetic"}}
    assert "does not name an earlier stage" in error({"rm": {"use": "reward_model", "model": "@rm"}}, [sft], [rm])
    assert "Did you mean 'rm'" in error({"rm": {"use": "reward_model", "model": "@rmm"}}, [rm])
    assert "is a sft stage, not a reward model" in error({"rm": {"use": "reward_model", "model": "@sft"}}, [sft])


def test_train_preflight_refuses_a_later_rm_stage(tiny_lm_dir, tmp_path):
    from rewardkit.train import run

    prefs = tmp_path / "prefs.jsonl"  # an existing file: the dataset check runs first and must pass
    prefs.write_text('{"chosen": "a", "rejected": "b"}\n', encoding="utf-8")
    cfg = _pipeline(
        [
            {
                "stage": "grpo",
                "model": str(tiny_lm_dir),
                "dataset": {"generator": "arithmetic"},
                "rewards": {"rm": {"use": "reward_model", "model": "@rm"}},
            },
            {"stage": "rm", "model": str(tiny_lm_dir), "dataset": {"path": str(prefs)}},
        ]
    )
    with pytest.raises(ConfigError, match=r"stage 'grpo': rewards.rm.model '@rm' does not name an earlier stage"):
        run(cfg)


def test_flat_specs_resolve_rm_references_too():
    """A spec without the `rewards:` level ({alias: entry, combine: ...}) is resolved like a nested one."""
    from rewardkit.train.config import load_stages
    from rewardkit.train.stage_rewards import reward_spec

    flat = {"rm": {"use": "reward_model", "model": "@rm"}, "em": {"use": "exact_match"}, "combine": "em + 0.1*rm"}
    cfg = _pipeline(
        [
            {"stage": "rm", "model": "m", "dataset": {"generator": "arithmetic"}},
            {"stage": "grpo", "model": "m", "dataset": {"generator": "arithmetic"}, "rewards": flat},
        ]
    )
    stages, _, where = load_stages(cfg)
    spec = reward_spec(stages[1], stages[:1], where)
    assert spec["rewards"]["rm"]["model"] == str(Path("runs/p/rm/final")) and spec["combine"] == "em + 0.1*rm"
    from rewardkit.composition.spec import parse_spec

    assert parse_spec(spec).rewards.keys() == {"rm", "em"}


class _RunsCode:
    """A pickled object whose unpickling would run code (os.system)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_bin_in_a_reward_models_folder_is_one_error_never_loaded(tiny_rm_dir, tiny_bert_dir, tmp_path):
    """A model folder (e.g. named by a received run's spec) holding a pickled pytorch_model.bin: torch refuses it
    with weights_only, and its text advises weights_only=False; the error is one line and never says that."""
    import shutil

    marker = tmp_path / "ran"
    for source, family, reward in [
        (tiny_rm_dir, "reward_model", {"use": "reward_model"}),
        (tiny_bert_dir, "bertscore", {"use": "bertscore", "reference": "answer", "num_layers": 2}),
    ]:
        folder = tmp_path / family
        shutil.copytree(source, folder)
        (folder / "model.safetensors").unlink()
        (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"w": _RunsCode(marker)}))
        key = "model" if family == "reward_model" else "model_type"
        composed = compose({"rewards": {"r": {**reward, key: str(folder)}}})
        with pytest.raises(ConfigError) as info:
            composed(prompts=["Q"], completions=["5"], answer=["5"])
        message = str(info.value)
        assert f"{family} model '{folder}': a pickled weights file (.bin) could not be loaded safely" in message
        assert "weights_only" not in message and len(message.splitlines()) == 1
    assert not marker.exists()
