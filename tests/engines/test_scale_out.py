"""Scale-out checks that run without vLLM or a GPU: the engine choice, the use_vllm preflight, checkpoint_inference's
vllm engine refusals, and best_checkpoint with a sharded (unloadable) checkpoint. The engines themselves are
compared by .ci/vllm_check.sh (vLLM venv) and tests/train/test_fsdp.py (FSDP2 on 2 CPU ranks)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings

import pytest

from rewardkit.core.errors import ConfigError

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.fixture
def tiny(tiny_lm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_lm_dir), AutoTokenizer.from_pretrained(tiny_lm_dir)


def _generate(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "rewardkit", "generate", *argv], capture_output=True, text=True, timeout=120, env=env
    )


def test_unknown_engine_is_one_line_exit_2(tiny_lm_dir, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "a"}\n')
    proc = _generate(str(tiny_lm_dir), "--input", str(rows), "--output", str(tmp_path / "o.jsonl"), "--engine", "tgi")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--engine 'tgi': expected one of hf, vllm" in lines[0] and "Hint:" in lines[0]


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here")
def test_engine_vllm_without_vllm_says_how_to_install(tiny_lm_dir, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "a"}\n')
    out = tmp_path / "o.jsonl"
    proc = _generate(str(tiny_lm_dir), "--input", str(rows), "--output", str(out), "--engine", "vllm")
    assert proc.returncode == 2 and "engine 'vllm' needs the vllm package" in proc.stderr, proc.stderr
    assert "rewardkit[vllm]" in proc.stderr and not out.exists()


def test_engine_vllm_needs_a_model_folder_not_an_object(tiny, tmp_path):
    from rewardkit.generation import generate_file

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "a"}\n')
    model, tok = tiny
    with pytest.raises(ConfigError, match="--engine vllm needs a model folder"):
        generate_file(model, rows, tmp_path / "o.jsonl", tokenizer=tok, engine="vllm")


def _grpo_config(model, out, **trainer):
    return {
        "stage": "grpo",
        "model": str(model),
        "output_dir": str(out),
        "dataset": {"generator": "arithmetic", "n": 8, "seed": 0},
        "rewards": {"rewards": {"ok": {"use": "math_exact_match", "reference": "answer"}}},
        "trainer": {
            "max_steps": 1,
            "num_generations": 2,
            "per_device_train_batch_size": 2,
            "use_cpu": True,
            "report_to": "none",
            **trainer,
        },
    }


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here")
def test_use_vllm_preflight_refuses_a_missing_vllm_before_training(tiny_lm_dir, tmp_path):
    from rewardkit.train import run

    with pytest.raises(ConfigError) as info:
        run(_grpo_config(tiny_lm_dir, tmp_path / "run", use_vllm=True, vllm_mode="server"))
    message = str(info.value)
    assert "trainer.use_vllm is true (server mode) but vllm is not installed" in message
    assert "Hint:" in message and not (tmp_path / "run").exists()


def test_trl_vllm_range_is_read_from_trl():
    from packaging.version import Version

    from rewardkit.train.preflight import trl_vllm_range

    low, high = trl_vllm_range()
    assert Version(low) < Version(high)


def test_checkpoint_inference_vllm_refuses_unsupported_generation_kwargs():
    from rewardkit import get_callback

    with pytest.raises(ConfigError, match=r"generation_kwargs \['num_beams'\] are not supported by engine 'vllm'"):
        get_callback(
            "checkpoint_inference", dataset=[{"prompt": "a"}], engine="vllm", generation_kwargs={"num_beams": 2}
        )


def test_checkpoint_inference_vllm_refuses_a_model_without_adapter(tiny, tmp_path):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from rewardkit import get_callback

    model, tok = tiny
    cb = get_callback("checkpoint_inference", dataset=[{"prompt": "a"}], engine="vllm")
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with pytest.raises(ConfigError, match="engine 'vllm' needs a PEFT"):
        cb.on_train_begin(args, TrainerState(), TrainerControl(), model=model, processing_class=tok)


def test_best_checkpoint_skips_a_sharded_checkpoint_it_cannot_load(tmp_path):
    """FSDP's SHARDED_STATE_DICT checkpoint-N has only pytorch_model_fsdp_*/ shards: best/ is not made from it."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from rewardkit import get_callback
    from rewardkit.selection.inference_files import write_step_file

    write_step_file(tmp_path / "inference", 2, 1.0, [{"id": 1, "prompt": "2+2=", "output": "4", "answer": "4"}])
    (tmp_path / "checkpoint-2" / "pytorch_model_fsdp_0").mkdir(parents=True)
    (tmp_path / "checkpoint-2" / "adapter_config.json").write_text(json.dumps({"r": 8}))
    cb = get_callback("best_checkpoint", spec={"rewards": {"em": {"use": "exact_match", "reference": "answer"}}})
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    state = TrainerState(global_step=2, epoch=1.0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cb.on_train_end(args, state, TrainerControl())
    assert any("holds no full adapter or model weights" in str(w.message) for w in seen), [str(w.message) for w in seen]
    assert not (tmp_path / "best").exists()


def test_generate_seconds_leaves_out_the_vllm_engines_shutdown(tiny_lm_dir, tmp_path, monkeypatch):
    """Issue 29: `generate --json` counted vLLM's shutdown (about 4 s) as generation time. The engine here is a
    stand-in (vllm is not installed on CPU CI) whose close() takes 1 s; generate_file's own timing is what runs."""
    import time

    from transformers import AutoTokenizer

    from rewardkit import generation
    from rewardkit.generation import generate_file

    class SlowToClose:
        dtype = "float32"

        def generate(self, prompts, max_new_tokens, generation_kwargs=None, progress=None):
            progress(len(prompts))
            return [f"out {i}" for i in range(len(prompts))]

        def close(self) -> None:
            time.sleep(1.0)

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    monkeypatch.setattr(generation, "start_vllm", lambda model, *args: (SlowToClose(), tok, str(model)))
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "1+1="}\n{"prompt": "2+2="}\n')
    result = generate_file(str(tiny_lm_dir), rows, tmp_path / "out.jsonl", engine="vllm", progress=False)
    assert result.engine == "vllm" and result.rows == 2
    assert result.generate_seconds < 0.5 <= 1.0 <= result.seconds, result
