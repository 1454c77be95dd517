"""Every example passes `rewardkit train FILE --smoke`: offline, tiny local models, the examples' own data samples.

No hand-written overrides: what `--smoke` swaps is what a user's first check swaps, so these files cannot drift
from the code (train/smoke.py).
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CONFIGS = sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.glob("*/*.yaml"))


@pytest.fixture(scope="module")
def smoke_cache(tmp_path_factory) -> Path:
    """One tiny-model cache for the module: the first example builds, the others reuse."""
    return tmp_path_factory.mktemp("smoke_cache")


@pytest.fixture
def smoke_env(smoke_cache, tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(ROOT)  # the configs name their data relative to the repository root
    monkeypatch.setenv("REWARDKIT_CACHE", str(smoke_cache))
    monkeypatch.setenv("REWARDKIT_SMOKE_DIR", str(tmp_path))
    return tmp_path


def test_every_example_config_is_listed():
    assert CONFIGS == [
        "competition/grpo_qlora.yaml",
        "competition/grpo_qlora_core.yaml",
        "scale/grpo_fsdp.yaml",
        "scale/grpo_zero3.yaml",
        "tutorial/dpo.yaml",
        "tutorial/grpo.yaml",
        "tutorial/pipeline.yaml",
        "tutorial/rm.yaml",
        "tutorial/sft.yaml",
    ]


@pytest.mark.parametrize("config", CONFIGS)
def test_example_smoke(config, smoke_env):
    if config.startswith("competition/"):
        pytest.importorskip("rewardkit_korean")  # the sample data (and grpo_qlora's presets) come from the plugin
    from rewardkit.train import run

    notes: list[str] = []
    results = run(EXAMPLES / config, smoke=True, say=notes.append)
    assert results and all(r.steps == 2 for r in results), results
    assert any("-> tiny local (" in n for n in notes) and notes[0].startswith("smoke: writing to ")
    # The swaps, then (off a terminal) one line per stage event: training starts after the last swap line.
    outputs = max(i for i, n in enumerate(notes) if n.startswith("smoke: "))
    assert notes[outputs + 1].startswith("stage ") and notes[-1].endswith("finished at step 2")
    out = smoke_env / Path(config).stem
    assert (Path(results[-1].model) / "model.safetensors").is_file()  # every example trains LoRA: merged/
    if config == "tutorial/pipeline.yaml":
        summary = json.loads((out / "summary.json").read_text())
        assert [(s["name"], s["steps"]) for s in summary] == [("sft", 2), ("rm", 2), ("dpo", 2), ("grpo", 2)]
        grpo = json.loads((out / "grpo" / "rewardkit_stage.json").read_text())["config"]
        assert grpo["model"] == "@dpo"
        assert grpo["rewards"]["rewards"]["rm"]["model"] == "@rm"  # the wiring is kept, resolved at run time
        return
    assert (out / "checkpoint-2").is_dir()  # the save at step 2
    if config.startswith("competition/"):
        scores = json.loads((out / "inference" / "scores.json").read_text())
        assert [c["step"] for c in scores["checkpoints"]] == [2] and scores["metric"] == "eval_score"
        assert (out / "best" / "adapter_config.json").is_file()
        assert (out / "adapters" / "step_2" / "adapter_config.json").is_file()
        records = json.loads((out / "inference" / "step_2.json").read_text())["records"]
        assert len(records) == 4 and all("answer" in r for r in records)
    if config.startswith("scale/"):  # the smoke run drops sharding and vLLM, and says so
        sharding = "fsdp, trainer.fsdp_config" if "fsdp" in config else "deepspeed"
        assert any(f"sharded training off (dropped trainer.{sharding})" in n for n in notes), notes
        assert any("vLLM generation off (trainer.use_vllm true -> false" in n for n in notes), notes
        assert (out / "best" / "adapter_config.json").is_file()
    if config == "competition/grpo_qlora.yaml":  # both BERTScore specs (rewards preset, callback preset) swapped
        assert sum("model_type bert-base-multilingual-cased -> tiny local BERT" in n for n in notes) == 2


def test_python_api_example(smoke_env):
    module = runpy.run_path(str(EXAMPLES / "python" / "train_grpo.py"))
    results = module["main"]([], smoke=True)
    assert results[0].steps == 2
    assert (smoke_env / "python-grpo" / "final" / "model.safetensors").is_file()
