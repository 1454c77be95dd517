"""`rewardkit train --smoke`: the pure override function, the tiny-model cache, offline data and the CLI flag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardkit.core.errors import ConfigError
from rewardkit.core.fileio import atomic_write_text
from rewardkit.train import smoke
from rewardkit.train.config import load_stages
from rewardkit.train.run_lock import locked
from tests.conftest import ROOT, closed_port


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REWARDKIT_SMOKE_DIR", str(tmp_path / "smoke"))
    return tmp_path / "cache" / "smoke"


def _rows(path: Path, n: int = 20) -> str:
    rows = [{"question": f"{i}+1=? 답은?", "answer": str(i + 1)} for i in range(n)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _judge(tmp_path: Path) -> dict:
    """A judge whose server is not running (a port nothing listens on): --smoke must not need it."""
    return {
        "use": "judge",
        "base_url": f"http://127.0.0.1:{closed_port()}/v1",
        "model": "grader",
        "user_template": "{completion} vs {reference}",
        "reference": "answer",
        "score": {"min": 1, "max": 5},
        "cache_path": str(tmp_path / "judge.sqlite"),
    }


def _config(tmp_path: Path) -> dict:
    judge = _judge(tmp_path)
    bertscore = {
        "use": "bertscore",
        "model_type": "bert-base-multilingual-cased",
        "num_layers": 9,
        "rescale_with_baseline": True,
        "lang": "en",
        "reference": "answer",
    }
    return {
        "stage": "grpo",
        "model": "Qwen/Qwen2.5-0.5B-Instruct",
        "tokenizer": "Qwen/Qwen2.5-0.5B-Instruct",
        "output_dir": str(tmp_path / "real"),
        "dataset": {
            "path": "someone/hub-dataset",
            "eval_split": "test",
            "smoke_path": _rows(tmp_path / "s.jsonl"),
            "columns": {"question": "prompt"},
            "system_prompt": "Réponds. 答え",
        },
        "peft": {"r": 4, "target_modules": ["c_attn"]},
        "quantization": {"bits": 4},
        "rewards": {
            "rewards": {
                "em": {"use": "exact_match"},
                "bs": bertscore,
                "rm": {"use": "reward_model", "model": "someone/reward-model", "tokenizer": "someone/reward-tokenizer"},
                "judge": judge,
            }
        },
        "callbacks": [
            {"name": "checkpoint_inference", "dataset": "@eval", "max_new_tokens": 256},
            {"name": "best_checkpoint", "spec": {"rewards": {"bs": bertscore, "judge": judge}}},
        ],
        "trainer": {
            "gradient_accumulation_steps": 4,
            "generation_batch_size": 16,
            "optim": "paged_adamw_8bit",
            "per_device_train_batch_size": 8,
            "num_generations": 8,
            "max_completion_length": 512,
            "bf16": True,
            "report_to": ["wandb"],
            "model_init_kwargs": {"dtype": "bfloat16", "x": 1},
            "eval_strategy": "epoch",
            "save_strategy": "no",
        },
    }


def test_smoke_overrides_swaps_and_leaves_the_input_alone(cache, tmp_path):
    stages, _, _ = load_stages(_config(tmp_path))
    before = stages[0].model_dump()
    [out], notes = smoke.smoke_overrides(stages, "c.yaml", tmp_path / "smoke-out")
    assert stages[0].model_dump() == before  # pure: the validated input is not modified

    assert Path(out.model).parent == cache and Path(out.model).name.startswith("lm-")
    assert out.tokenizer is None and out.quantization is None
    assert out.peft.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert out.output_dir == str(tmp_path / "smoke-out")
    ds = out.dataset
    assert ds.path == str(tmp_path / "s.jsonl") and ds.eval_split is None and ds.smoke_path is None
    assert (ds.max_rows, ds.eval_size) == (12, 4)
    t = out.trainer
    assert t["max_steps"] == 2 and t["eval_strategy"] == "steps" and t["eval_steps"] == 2
    assert t["save_strategy"] == "steps" and t["save_steps"] == 2
    assert t["num_generations"] == 2 and t["num_generations_eval"] == 2 and t["max_completion_length"] == 8
    assert t["per_device_train_batch_size"] == 2 and t["gradient_accumulation_steps"] == 1
    assert "generation_batch_size" not in t and t["optim"] == "adamw_torch"
    assert (t["bf16"], t["use_cpu"], t["report_to"]) == (False, True, "none")
    assert t["model_init_kwargs"] == {"x": 1}
    bs = out.rewards["rewards"]["bs"]
    assert Path(bs["model_type"]).name.startswith("bert-") and bs["num_layers"] == 2
    assert bs["rescale_with_baseline"] is False
    rm = out.rewards["rewards"]["rm"]
    assert Path(rm["model"]).name.startswith("rm-") and "tokenizer" not in rm
    assert out.callbacks[0]["max_new_tokens"] == 8
    assert out.callbacks[1]["spec"]["rewards"]["bs"]["model_type"] == bs["model_type"]
    assert out.rewards["rewards"]["judge"]["offline_stand_in"] is True
    assert out.callbacks[1]["spec"]["rewards"]["judge"]["offline_stand_in"] is True

    assert all(n.startswith("smoke: stage grpo: ") for n in notes)
    text = "\n".join(notes)
    for expected in (
        "dataset someone/hub-dataset -> ",
        "8 training rows + 4 held out",
        "model Qwen/Qwen2.5-0.5B-Instruct -> tiny local (",
        "tokenizer Qwen/Qwen2.5-0.5B-Instruct ->",
        "quantization 4-bit -> none",
        "peft.target_modules ['c_attn']",
        "rewards.bs.model_type bert-base-multilingual-cased -> tiny local BERT",
        "rewards.rm.model someone/reward-model -> tiny local reward model",
        "callbacks[1].spec.bs.model_type",
        "callbacks[0] (checkpoint_inference) max_new_tokens 256 -> 8",
        "rewards.judge judge at http://127.0.0.1:",
        "callbacks[1].spec.judge judge at http://127.0.0.1:",
        "/v1 -> offline stand-in (replies from a hash of each request)",
    ):
        assert expected in text, (expected, text)


def test_smoke_stages_pass_the_preflight_and_prepare(cache, tmp_path):
    """The overrides form a config TRL accepts (batch divisibility, eval strategy) and every model resolves."""
    from rewardkit.train.pipeline import prepare

    stages, _, _ = load_stages(_config(tmp_path))
    out, _ = smoke.smoke_overrides(stages, "c.yaml", tmp_path / "smoke-out")
    with smoke.smoke_mode():
        [prepared] = prepare(out, "c.yaml")  # the judge's preflight too: its server is not running
    assert len(prepared.train) == 8 and len(prepared.eval) == 4
    judge = prepared.rewards.components["judge"]
    rows = {"completions": ["2", "3", "abc", "2"], "answer": ["2", "2", "x", "2"]}
    first = judge(**rows)
    assert first == judge(**rows) and first[0] == first[3]  # deterministic: the same row scores the same
    assert all(0 <= v <= 1 for v in first) and len(set(first)) > 1
    assert judge.usage["requests"] == 0 and not (tmp_path / "judge.sqlite").exists()  # nothing sent or cached


def test_tiny_models_are_cached_per_alphabet(cache, monkeypatch):
    from transformers import AutoTokenizer

    from rewardkit.train import smoke_models

    first = smoke.tiny_lm("가나")
    assert first.parent == cache and (first / smoke.DONE).is_file()
    assert len(AutoTokenizer.from_pretrained(first).tokenize("가나")) == 2  # one token per seen character

    def rebuild(*args, **kwargs):
        raise AssertionError("the cached model was rebuilt")

    monkeypatch.setattr(smoke_models, "make_tiny", rebuild)
    done_before = (first / smoke.DONE).stat().st_mtime_ns
    assert smoke.tiny_lm("가나") == first  # `rebuild` raises if the cached model were built again
    assert (first / smoke.DONE).stat().st_mtime_ns == done_before  # and the cache entry was left as it was
    with pytest.raises(AssertionError, match="rebuilt"):
        smoke.tiny_lm("다")  # another alphabet is another model
    assert not [p for p in cache.iterdir() if p.name.startswith(".")], "a temporary build folder was left behind"


def test_hub_dataset_without_smoke_path_fails_offline_in_one_line(cache, tmp_path):
    cfg = {"stage": "sft", "model": "Qwen/Qwen2.5-0.5B-Instruct", "dataset": {"path": "rewardkit-tests/no-data"}}
    stages, _, _ = load_stages(cfg)
    start = time.perf_counter()
    with smoke.smoke_mode(), pytest.raises(ConfigError) as info:
        smoke.smoke_overrides(stages, "c.yaml", tmp_path / "out")
    msg = str(info.value)
    assert time.perf_counter() - start < 10
    assert "\n" not in msg and "dataset.path 'rewardkit-tests/no-data' is a hub dataset" in msg
    assert "smoke_path" in msg


def test_smoke_mode_is_offline_and_restores(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with smoke.smoke_mode():
        assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True
    assert "HF_HUB_OFFLINE" not in os.environ and constants.HF_HUB_OFFLINE is False


def test_output_folder_is_emptied_but_a_foreign_one_is_refused(tmp_path):
    root = tmp_path / "smoke" / "x"
    smoke.prepare_output(root)
    with locked(root / "sft", print):  # what an earlier smoke run's stage wrote in the folder made for it
        atomic_write_text(root / "sft" / "stale.txt", "old", inside=root / "sft")
    (root / "sft" / "notes.md").write_text("mine")  # ... and a user's note inside its folder: refused, kept
    with pytest.raises(ConfigError, match=r"empties this folder, but .*sft/notes\.md is not written by the run"):
        smoke.prepare_output(root)
    assert (root / "sft" / "stale.txt").read_text() == "old"
    (root / "sft" / "notes.md").unlink()
    smoke.prepare_output(root)
    assert sorted(p.name for p in root.iterdir()) == [smoke.MARKER, ".rewardkit-written.jsonl"]
    foreign = tmp_path / "real"
    foreign.mkdir()
    (foreign / "checkpoint-100").mkdir()
    with pytest.raises(ConfigError, match="was not written by --smoke"):
        smoke.prepare_output(foreign)
    assert (foreign / "checkpoint-100").is_dir()


def test_output_root_names():
    assert smoke.output_root("examples/tutorial/sft.yaml") == Path("runs/smoke/sft")
    assert smoke.output_root("config", "runs/python-grpo") == Path("runs/smoke/python-grpo")


# Stands for a package that talks on stderr while the run imports it (transformers 5.25's `kernels` did):
# a logger nobody listed and a bare print, both fired when trl is first imported.
NOISE = """
import importlib.abc, logging, sys

class Noisy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "trl":
            sys.meta_path.remove(self)
            logging.getLogger("kernels._internals.hf_hub").warning("Skipping publisher trust check (NOISE)")
            print("Failed to load CPU gemm_4bit_forward (NOISE)", file=sys.stderr)
        return None

sys.meta_path.insert(0, Noisy())
"""


@pytest.mark.slow
def test_cli_smoke_prints_swaps_then_the_summary(tmp_path):
    real = ROOT / "runs" / "tutorial" / "grpo"
    real_before = real.exists()
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "sitecustomize.py").write_text(NOISE)
    path = os.pathsep.join([str(tmp_path / "noise"), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {
        **os.environ,
        "REWARDKIT_CACHE": str(tmp_path / "cache"),
        "REWARDKIT_SMOKE_DIR": str(tmp_path / "out"),
        "COLUMNS": "300",
        "PYTHONPATH": path,
    }
    # --output wins over REWARDKIT_SMOKE_DIR
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rewardkit",
            "train",
            "examples/tutorial/grpo.yaml",
            "--smoke",
            "--output",
            str(tmp_path / "out" / "grpo"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**env, "REWARDKIT_SMOKE_DIR": str(tmp_path / "elsewhere")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Piped stderr gets rewardkit's own lines only: no third-party log line, print or progress bar.
    assert proc.stderr.splitlines() == [], proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "smoke: stage grpo: model Qwen/Qwen2.5-0.5B-Instruct -> tiny local (" in proc.stdout
    assert "smoke: stage grpo: quantization 4-bit -> none (CPU, fp32)" in lines
    # the first line says where the run writes
    assert lines[0] == (
        f"smoke: writing to {(tmp_path / 'out' / 'grpo').resolve()}/ (emptied first; real runs are "
        "untouched; --output DIR to change)"
    )
    assert not (tmp_path / "elsewhere").exists()
    assert "examples/tutorial/grpo.yaml: 1 stage(s)" in lines
    assert (tmp_path / "out" / "grpo" / "merged" / "model.safetensors").is_file()
    assert real.exists() == real_before  # the config's real output folder is never written
