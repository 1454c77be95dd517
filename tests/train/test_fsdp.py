"""checkpoint_inference, lora_save and best_checkpoint on a torch FSDP2 model: 2 CPU ranks (torchrun + gloo) give
the same step file and the same adapter as one unsharded process, and best/ loads with peft on one process."""

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TESTS

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]
SCRIPT = TESTS / "scripts" / "fsdp_callbacks_run.py"


@pytest.fixture(scope="module")
def varied_lm_dir(tmp_path_factory) -> Path:
    """A tiny LM whose greedy outputs differ between prompts (the default init repeats one token everywhere)."""
    from rewardkit.core.tiny import save_tiny_causal_lm

    return save_tiny_causal_lm(tmp_path_factory.mktemp("varied_lm"), initializer_range=0.1)


def _run(cmd: list[str]) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-6000:]
    return proc.stdout


def _unsharded_here(model_dir: Path, out: Path) -> None:
    """The unsharded reference in this process (a subprocess spends most of its time importing torch and TRL);
    the global RNG the script seeds is put back afterwards."""
    import torch

    assert os.environ.get("WORLD_SIZE", "1") == "1"
    spec = importlib.util.spec_from_file_location("fsdp_callbacks_run", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with torch.random.fork_rng():
        script.main([str(model_dir), str(out)])


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not installed")
def test_fsdp2_callbacks_equal_the_unsharded_run(varied_lm_dir, tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit.engines.hf import generate_texts

    single, sharded = tmp_path / "single", tmp_path / "fsdp"
    _unsharded_here(varied_lm_dir, single)
    out = _run(["torchrun", "--standalone", "--nproc_per_node", "2", str(SCRIPT), str(varied_lm_dir), str(sharded)])
    assert sorted(line.split()[1] for line in out.splitlines() if line.startswith("RANK")) == ["0", "1"]

    records = json.loads((sharded / "inference" / "step_2.json").read_text())["records"]
    assert [r["id"] for r in records] == [f"v{i}" for i in range(7)]  # shards of 4 + 3, padding dropped
    assert records == json.loads((single / "inference" / "step_2.json").read_text())["records"]
    assert len({r["output"] for r in records}) > 1  # the outputs depend on the prompt: a real comparison

    for folder in ("adapters/step_2", "best"):  # gathered full tensors, saved once, equal to the unsharded save
        ours, ref = (load_file(root / folder / "adapter_model.safetensors") for root in (sharded, single))
        assert ours.keys() == ref.keys() and ours
        assert all(ours[k].shape == ref[k].shape and (ours[k] == ref[k]).all() for k in ref), folder
    scores = json.loads((sharded / "inference" / "scores.json").read_text())
    assert [c["step"] for c in scores["checkpoints"]] == [2] and scores["best_dir"]["step"] == 2
    assert [p.name for p in sharded.rglob("*") if p.name.startswith(".") and p.is_dir()] == []  # no temp folders

    # best/ loads with peft on one process and reproduces the sharded run's generations.
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(varied_lm_dir), str(sharded / "best"))
    tokenizer = AutoTokenizer.from_pretrained(sharded / "best")
    assert generate_texts(model, tokenizer, [r["prompt"] for r in records], batch_size=2, max_new_tokens=8) == [
        r["output"] for r in records
    ]
