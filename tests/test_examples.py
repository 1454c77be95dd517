"""Every example runs, with the model and data swapped for tiny local ones through `--set` overrides only."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# What every test run changes besides model and data: CPU, two steps, no quantization, short sequences.
FAST = ["trainer.max_steps=2", "trainer.activation_checkpointing=false", "trainer.disable_tqdm=true",
        "trainer.logging_steps=1", "trainer.use_cpu=true"]


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> dict[str, str]:
    """Local stand-ins for trl-lib/Capybara (messages) and trl-lib/ultrafeedback_binarized (implicit prompt)."""
    d = tmp_path_factory.mktemp("example_data")
    chats = [{"messages": [{"role": "user", "content": f"Say {i}"}, {"role": "assistant", "content": str(i)}]}
             for i in range(8)]
    pairs = [{"chosen": [{"role": "user", "content": f"Say {i}"}, {"role": "assistant", "content": str(i)}],
              "rejected": [{"role": "user", "content": f"Say {i}"}, {"role": "assistant", "content": f"no {i}"}]}
             for i in range(8)]
    return {"chat": _jsonl(d / "chat.jsonl", chats), "pairs": _jsonl(d / "pairs.jsonl", pairs)}


def _stage_overrides(prefix: str, tiny_lm_dir: Path, tiny_data: dict, stage: str) -> list[str]:
    sets = {"sft": [f"dataset={{path: {tiny_data['chat']}}}", "trainer.max_length=48"],
            "rm": [f"dataset={{path: {tiny_data['pairs']}}}", "trainer.max_length=48"],
            "dpo": [f"dataset={{path: {tiny_data['pairs']}}}", "trainer.max_length=48"],
            "grpo": ["dataset.n=8", "trainer.max_completion_length=6", "trainer.per_device_train_batch_size=4",
                     "trainer.num_generations=4"]}[stage]
    return [f"{prefix}{s}" for s in [f"model={tiny_lm_dir}", "quantization=null", *sets]]


@pytest.mark.parametrize("stage", ["sft", "rm", "dpo", "grpo"])
def test_tutorial_stage(stage, tiny_lm_dir, tiny_data, tmp_path):
    from rewardkit.train import run

    overrides = _stage_overrides("", tiny_lm_dir, tiny_data, stage) + FAST + [f"output_dir={tmp_path / stage}"]
    [result] = run(EXAMPLES / "tutorial" / f"{stage}.yaml", overrides)
    assert result.stage == stage and result.steps == 2
    assert (tmp_path / stage / "merged" / "model.safetensors").is_file()


def test_tutorial_pipeline(tiny_lm_dir, tiny_data, tmp_path):
    from rewardkit.train import run

    overrides = [f"output_dir={tmp_path}", "defaults.quantization=null", f"pipeline.sft.model={tiny_lm_dir}",
                 *(f"defaults.{s}" for s in FAST)]
    for stage in ("sft", "rm", "dpo", "grpo"):
        overrides += [s for s in _stage_overrides(f"pipeline.{stage}.", tiny_lm_dir, tiny_data, stage)
                      if ".model=" not in s and ".quantization=" not in s]
    results = run(EXAMPLES / "tutorial" / "pipeline.yaml", overrides)
    assert [r.name for r in results] == ["sft", "rm", "dpo", "grpo"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [s["steps"] for s in summary] == [2, 2, 2, 2]
    stage_config = json.loads((tmp_path / "grpo" / "rewardkit_stage.json").read_text())["config"]
    assert stage_config["model"] == "@dpo"


@pytest.fixture(scope="module")
def tiny_presets(tiny_bert_dir, tmp_path_factory) -> dict[str, str]:
    """The Korean plugin's presets with BERTScore pointed at the tiny local BERT (the real one is not offline)."""
    import yaml

    from rewardkit import get_preset as load_preset

    d = tmp_path_factory.mktemp("presets")
    out = {}
    for name in ("blog", "official"):
        spec = load_preset(name)
        spec["rewards"]["bertscore"].update(model_type=str(tiny_bert_dir), num_layers=2)
        (d / f"{name}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
        out[name] = str(d / f"{name}.yaml")
    return out


COMPETITION = ["quantization=null", "trainer.eval_steps=1", "trainer.save_steps=1", "trainer.max_completion_length=8",
               "callbacks.checkpoint_inference.max_new_tokens=8"]


@pytest.mark.parametrize("config", ["grpo_qlora.yaml", "grpo_qlora_core.yaml"])
def test_competition(config, tiny_lm_dir, tiny_presets, tmp_path, monkeypatch):
    pytest.importorskip("rewardkit_korean")
    from rewardkit.train import run

    monkeypatch.chdir(ROOT)  # the config points at the plugin's sample file relative to the repository root
    overrides = [f"model={tiny_lm_dir}", f"output_dir={tmp_path}", *FAST, *COMPETITION]
    if config == "grpo_qlora.yaml":
        overrides += [f"rewards={tiny_presets['blog']}", f"callbacks.best_checkpoint.spec={tiny_presets['official']}"]
    [result] = run(EXAMPLES / "competition" / config, overrides)
    assert result.steps == 2
    scores = json.loads((tmp_path / "inference" / "scores.json").read_text())
    assert [c["step"] for c in scores["checkpoints"]] == [1, 2] and scores["metric"] == "eval_score"
    assert (tmp_path / "best" / "adapter_config.json").is_file()
    assert {p.name for p in (tmp_path / "adapters").iterdir()} >= {"step_1", "step_2"}
    records = json.loads((tmp_path / "inference" / "step_2.json").read_text())["records"]
    assert len(records) == 4 and all("answer" in r for r in records)


def test_python_api_example(tiny_lm_dir, tmp_path):
    module = runpy.run_path(str(EXAMPLES / "python" / "train_grpo.py"))
    results = module["main"]([f"model={tiny_lm_dir}", f"output_dir={tmp_path}", "dataset.n=8",
                              "trainer.max_completion_length=6", *FAST])
    assert results[0].steps == 2
    assert (tmp_path / "final" / "model.safetensors").is_file()
