"""Preflight: every model and tokenizer of every stage resolves before anything trains; load errors are one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from rewardkit.core.errors import ConfigError
from rewardkit.train import preflight, run


def _pipeline(tmp_path: Path, tiny_lm_dir: Path, second: dict) -> dict:
    sft = {
        "stage": "sft",
        "model": str(tiny_lm_dir),
        "dataset": {"generator": "arithmetic", "n": 8},
        "trainer": {"max_steps": 1, "save_strategy": "no"},
    }
    dpo = {"stage": "dpo", "name": "pref", "model": "@sft", "dataset": {"generator": "arithmetic", "n": 8}, **second}
    return {"output_dir": str(tmp_path / "run"), "pipeline": [sft, dpo]}


def _error(cfg) -> str:
    with pytest.raises(ConfigError) as info:
        run(cfg)
    return str(info.value)


def test_cli_missing_model_in_stage_two_fails_before_stage_one(tiny_lm_dir, tmp_path):
    cfg = _pipeline(tmp_path, tiny_lm_dir, {"model": "./no/such/model"})
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit", "train", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "300"},
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "stage 'pref': pipeline.1.model './no/such/model' does not exist" in lines[0]
    assert "Hint:" in lines[0] and "--smoke" in lines[0]
    assert not (tmp_path / "run").exists(), "stage 1 ran before the missing model of stage 2 was found"
    assert elapsed < 10, f"{elapsed:.1f} s"


def test_missing_tokenizer(tiny_lm_dir, tmp_path):
    msg = _error(_pipeline(tmp_path, tiny_lm_dir, {"tokenizer": str(tmp_path / "no_tok")}))
    assert "stage 'pref': pipeline.1.tokenizer" in msg and "does not exist" in msg
    assert not (tmp_path / "run").exists()


def test_folder_without_model_or_tokenizer_files(tiny_lm_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = _error(_pipeline(tmp_path, tiny_lm_dir, {"model": str(empty)}))
    assert "pipeline.1.model" in msg and "folder without config.json" in msg
    msg = _error(_pipeline(tmp_path, tiny_lm_dir, {"tokenizer": str(empty)}))
    assert "pipeline.1.tokenizer" in msg and "no tokenizer files" in msg
    # A model folder is a fine tokenizer source: it holds the tokenizer files.
    assert preflight.problem(str(tiny_lm_dir), "tokenizer") is None


def test_offline_hub_id_not_in_cache_is_one_line_and_fast(tiny_lm_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    msg = _error(_pipeline(tmp_path, tiny_lm_dir, {"model": "rewardkit-tests/no-such-model"}))
    assert time.perf_counter() - start < 5
    assert "\n" not in msg
    assert (
        "pipeline.1.model 'rewardkit-tests/no-such-model' is neither a local folder nor in the Hugging Face "
        "cache (HF_HUB_OFFLINE=1" in msg
    )
    assert "`hf download rewardkit-tests/no-such-model`" in msg and "--smoke" in msg


def test_bertscore_model_in_a_reward_spec_is_checked(tiny_lm_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rewards = {"rewards": {"bs": {"use": "bertscore", "model_type": "rewardkit-tests/no-bert", "num_layers": 2}}}
    cfg = {
        "stage": "grpo",
        "model": str(tiny_lm_dir),
        "output_dir": str(tmp_path / "run"),
        "dataset": {"generator": "arithmetic", "n": 8},
        "rewards": rewards,
    }
    msg = _error(cfg)
    assert "rewards.bs.model_type 'rewardkit-tests/no-bert'" in msg
    cfg["rewards"] = {"rewards": {"em": {"use": "exact_match"}}}
    cfg["callbacks"] = [{"name": "best_checkpoint", "spec": rewards}]
    assert "callbacks[0].spec.bs.model_type" in _error(cfg)


@pytest.fixture
def silent_hub(monkeypatch):
    """A loopback 'hub' that accepts connections and never answers (the unreachable-but-routed case)."""
    import huggingface_hub.constants as constants

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    yield
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_unreachable_hub_is_detected_within_the_deadline(silent_hub, monkeypatch):
    monkeypatch.setenv("REWARDKIT_HUB_TIMEOUT", "1")
    start = time.perf_counter()
    why = preflight.problem("rewardkit-tests/some-model")
    elapsed = time.perf_counter() - start
    assert why == "the hub did not answer within 1 s" or "hub is unreachable" in why, why
    assert elapsed < 2.5, f"{elapsed:.1f} s"


def test_load_error_after_the_preflight_is_one_line(tiny_lm_dir, tmp_path, monkeypatch):
    """A model that disappears between the preflight and the load (a race) still gives one ConfigError line."""
    import shutil

    from rewardkit.train import pipeline, stages

    model = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, model)
    real = stages.build_trainer

    def vanish_then_build(*args, **kwargs):
        shutil.rmtree(model)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "build_trainer", vanish_then_build)
    cfg = {
        "stage": "sft",
        "model": str(model),
        "output_dir": str(tmp_path / "run"),
        "dataset": {"generator": "arithmetic", "n": 4},
        "trainer": {"max_steps": 1, "save_strategy": "no"},
    }
    msg = _error(cfg)
    assert "\n" not in msg and f"stage 'sft': model '{model}' does not exist" in msg
