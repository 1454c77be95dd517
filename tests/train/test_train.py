"""`rewardkit train`: each stage end to end on the tiny model, the pipeline form, overrides and config errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rewardkit.core.errors import ConfigError
from rewardkit.train.config import apply_overrides, load_stages
from tests.conftest import accelerate_two_processes

FAST = {
    "max_steps": 2,
    "per_device_train_batch_size": 2,
    "logging_steps": 1,
    "save_strategy": "no",
    "activation_checkpointing": False,
    "disable_tqdm": True,
    "seed": 0,
}


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("train_data")
    _jsonl(
        d / "messages.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": f"What is {i}+{i}?"},
                    {"role": "assistant", "content": str(2 * i)},
                ]
            }
            for i in range(8)
        ],
    )
    _jsonl(
        d / "pairs.jsonl",
        [{"prompt": f"What is {i}+1?", "chosen": f" {i + 1}", "rejected": f" {i + 2} maybe"} for i in range(8)],
    )
    _jsonl(
        d / "nested.jsonl",
        [{"id": str(i), "input": {"question": f"{i}+1="}, "output": {"answer": str(i + 1)}} for i in range(8)],
    )
    return d


def _stage(stage: str, model: Path, out: Path, dataset: dict, **extra) -> dict:
    trainer = dict(FAST, **extra.pop("trainer", {}))
    return {
        "stage": stage,
        "model": str(model),
        "output_dir": str(out),
        "dataset": dataset,
        "trainer": trainer,
        **extra,
    }


def test_sft_with_lora_saves_adapter_and_merged_model(tiny_lm_dir, data_dir, tmp_path):
    from rewardkit.train import run

    cfg = _stage(
        "sft",
        tiny_lm_dir,
        tmp_path / "sft",
        {"path": str(data_dir / "messages.jsonl"), "eval_size": 2},
        peft={"r": 4, "dropout": 0.0},
        trainer={"max_length": 32, "eval_strategy": "steps", "eval_steps": 2},
    )
    [result] = run(cfg)
    assert result.steps == 2 and result.train_loss is not None
    assert (tmp_path / "sft/final/adapter_config.json").is_file()
    assert (tmp_path / "sft/merged/model.safetensors").is_file()
    assert result.model == str(tmp_path / "sft/merged")
    assert json.loads((tmp_path / "sft/rewardkit_stage.json").read_text())["config"]["stage"] == "sft"


def test_peft_target_modules_naming_no_module_is_one_error(tiny_lm_dir, data_dir, tmp_path):
    """Was peft's NoMatchingPeftModuleError traceback once the model had loaded."""
    from rewardkit.train import run

    cfg = _stage(
        "sft",
        tiny_lm_dir,
        tmp_path / "sft",
        {"path": str(data_dir / "messages.jsonl")},
        peft={"target_modules": ["nope"]},
    )
    with pytest.raises(ConfigError, match=r"stage 'sft': peft.target_modules \['nope'\] names no module of the model"):
        run(cfg)


def test_rm_uses_seq_cls_lora(tiny_lm_dir, data_dir, tmp_path):
    from rewardkit.train import run

    cfg = _stage(
        "rm",
        tiny_lm_dir,
        tmp_path / "rm",
        {"path": str(data_dir / "pairs.jsonl")},
        peft={"r": 4},
        trainer={"max_length": 32},
    )
    [result] = run(cfg)
    assert result.steps == 2
    adapter = json.loads((tmp_path / "rm/final/adapter_config.json").read_text())
    assert adapter["task_type"] == "SEQ_CLS"
    merged = json.loads((tmp_path / "rm/merged/config.json").read_text())
    assert merged["architectures"] == ["Qwen2ForSequenceClassification"] and len(merged["id2label"]) == 1


def test_dpo_full_weights(tiny_lm_dir, data_dir, tmp_path):
    from rewardkit.train import run

    [result] = run(
        _stage(
            "dpo",
            tiny_lm_dir,
            tmp_path / "dpo",
            {"path": str(data_dir / "pairs.jsonl")},
            trainer={"max_length": 32, "beta": 0.1},
        )
    )
    assert result.steps == 2
    assert result.model == str(tmp_path / "dpo/final")
    assert (tmp_path / "dpo/final/model.safetensors").is_file()


def test_grpo_nested_columns_rewards_and_callbacks(tiny_lm_dir, data_dir, tmp_path):
    from rewardkit.train import run

    dataset = {
        "path": str(data_dir / "nested.jsonl"),
        "eval_size": 2,
        "columns": {"input.question": "prompt", "output.answer": "answer"},
    }
    rewards = {
        "rewards": {
            "correct": {"use": "math_exact_match", "weight": 1.0},
            "short": {"use": "brevity", "max_length": 20, "weight": 0.2},
        }
    }
    callbacks = [
        {
            "name": "checkpoint_inference",
            "dataset": "@eval",
            "reference_columns": ["answer"],
            "max_new_tokens": 4,
            "on": "save",
        },
        {"name": "best_checkpoint", "spec": "@rewards"},
    ]
    trainer = {
        "per_device_train_batch_size": 4,
        "num_generations": 4,
        "max_completion_length": 4,
        "save_strategy": "steps",
        "save_steps": 2,
    }
    [result] = run(
        _stage("grpo", tiny_lm_dir, tmp_path / "grpo", dataset, rewards=rewards, callbacks=callbacks, trainer=trainer)
    )
    assert result.steps == 2
    scores = json.loads((tmp_path / "grpo/inference/scores.json").read_text())
    assert [c["step"] for c in scores["checkpoints"]] == [2]
    assert (tmp_path / "grpo/best/model.safetensors").is_file()
    rows = [json.loads(x) for x in (tmp_path / "grpo/eval_rows.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {"prompt", "answer", "id"} <= set(rows[0])


def test_pipeline_hands_merged_model_to_next_stage(tiny_lm_dir, data_dir, tmp_path):
    from rewardkit.train import run

    cfg = {
        "output_dir": str(tmp_path / "pipe"),
        "defaults": {"trainer": dict(FAST, max_length=32), "peft": {"r": 4}},
        "pipeline": [
            {"stage": "sft", "model": str(tiny_lm_dir), "dataset": {"path": str(data_dir / "messages.jsonl")}},
            {"stage": "dpo", "name": "pref", "model": "@sft", "dataset": {"path": str(data_dir / "pairs.jsonl")}},
        ],
    }
    results = run(cfg, ["pipeline.pref.trainer.max_steps=1"])
    assert [(r.name, r.steps) for r in results] == [("sft", 2), ("pref", 1)]
    config = json.loads((tmp_path / "pipe/pref/rewardkit_stage.json").read_text())["config"]
    assert config["model"] == "@sft"
    summary = json.loads((tmp_path / "pipe/summary.json").read_text())
    assert [s["name"] for s in summary] == ["sft", "pref"]
    assert summary[0]["model"] == str(tmp_path / "pipe/sft/merged")


# --- overrides -------------------------------------------------------------------------------------------------
def test_overrides_parse_yaml_and_address_lists():
    data = {"model": "x", "trainer": {"lr": 1}, "pipeline": [{"stage": "sft"}, {"stage": "dpo", "name": "pref"}]}
    out = apply_overrides(
        data,
        [
            "model=/tmp/tiny",
            "trainer.max_steps=2",
            "quantization=null",
            "peft={r: 4}",
            "pipeline.0.model=@a",
            "pipeline.pref.trainer.beta=0.5",
            "new.deep.key=[1, 2]",
        ],
    )
    assert out["model"] == "/tmp/tiny" and out["trainer"] == {"lr": 1, "max_steps": 2}
    assert out["quantization"] is None and out["peft"] == {"r": 4}
    assert out["pipeline"][0]["model"] == "@a" and out["pipeline"][1]["trainer"] == {"beta": 0.5}
    assert out["new"] == {"deep": {"key": [1, 2]}}
    assert data["model"] == "x"  # the input is not modified


@pytest.mark.parametrize(
    "item, message",
    [
        ("noequals", "expected key=value"),
        ("model.x=1", "not a mapping"),
        ("pipeline.5.model=a", "out of range"),
        ("pipeline.dop.model=a", "Did you mean 'dpo'"),
    ],
)
def test_override_errors(item, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides({"model": "m", "pipeline": [{"stage": "sft"}, {"stage": "dpo"}]}, [item])


# --- config errors ---------------------------------------------------------------------------------------------
def _run_error(cfg, overrides=None) -> str:
    from rewardkit.train import run

    with pytest.raises(ConfigError) as info:
        run(cfg, overrides)
    return str(info.value)


def test_unknown_trainer_key_names_closest(tiny_lm_dir, tmp_path):
    msg = _run_error(
        _stage("sft", tiny_lm_dir, tmp_path, {"generator": "arithmetic", "n": 4}, trainer={"learning_rat": 1})
    )
    assert "trainer.learning_rat" in msg and "Did you mean 'learning_rate'" in msg and "SFTConfig" in msg


def test_unknown_config_key_names_closest(tmp_path):
    msg = _run_error(_stage("sft", "m", tmp_path, {"generator": "arithmetic", "n": 4}, callback=[]))
    assert "callback: unknown key" in msg and "Did you mean 'callbacks'" in msg
    msg = _run_error(_stage("sft", "m", tmp_path, {"generator": "arithmetic", "colums": {}}))
    assert "dataset.colums" in msg and "Did you mean 'columns'" in msg


def test_missing_columns_name_stage_found_and_needed(tiny_lm_dir, data_dir, tmp_path):
    msg = _run_error(_stage("sft", tiny_lm_dir, tmp_path, {"path": str(data_dir / "pairs.jsonl")}))
    assert "stage 'sft' (sft)" in msg and "['prompt', 'chosen', 'rejected']" in msg
    assert "messages | prompt + completion | text" in msg
    rewards = {"rewards": {"em": {"use": "exact_match", "reference": "gold"}}}
    msg = _run_error(_stage("grpo", tiny_lm_dir, tmp_path, {"generator": "arithmetic", "n": 4}, rewards=rewards))
    assert "missing ['gold']" in msg and "'gold' is read by reward em" in msg and "GRPO needs" in msg
    msg = _run_error(_stage("dpo", tiny_lm_dir, tmp_path, {"path": str(data_dir / "messages.jsonl")}))
    assert "stage 'dpo' (dpo)" in msg and "missing ['chosen', 'rejected']" in msg


def test_quantization_without_gpu_is_a_config_error(tiny_lm_dir, tmp_path, monkeypatch):
    from rewardkit.train import stages

    monkeypatch.setattr(stages, "cuda_available", lambda: False)
    cfg = _stage("sft", tiny_lm_dir, tmp_path, {"generator": "arithmetic", "n": 4}, peft={}, quantization={"bits": 4})
    msg = _run_error(cfg)
    assert "needs a CUDA GPU" in msg and "quantization=null" in msg
    assert "add a 'peft'" in _run_error(dict(cfg, peft=None))


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("stage: sft\nmodel: m\ndataset: {path: x.jsonl\ntrainer: {}\n", encoding="utf-8")
    msg = _run_error(str(path))
    assert f"{path}:4:" in msg and "YAML syntax error" in msg


def test_bad_references_and_missing_eval_set(tiny_lm_dir, tmp_path):
    cfg = {
        "pipeline": [
            {"stage": "sft", "model": "@dpo", "dataset": {"generator": "arithmetic"}},
            {"stage": "dpo", "model": "m", "dataset": {"generator": "arithmetic"}},
        ]
    }
    assert "does not name an earlier stage" in _run_error(cfg)
    single = _stage("sft", "@sft", tmp_path, {"generator": "arithmetic"})
    assert "refers to an earlier stage" in _run_error(single)
    assert "needs 'rewards'" in _run_error(_stage("grpo", "m", tmp_path, {"generator": "arithmetic"}))
    assert "needs an eval set" in _run_error(
        _stage("sft", tiny_lm_dir, tmp_path, {"generator": "arithmetic"}, trainer={"eval_strategy": "steps"})
    )
    assert "output_dir" in _run_error(
        _stage("sft", tiny_lm_dir, tmp_path, {"generator": "arithmetic"}, trainer={"output_dir": "x"})
    )


def test_cli_prints_one_red_line_and_exits_2(tiny_lm_dir, tmp_path, capsys, monkeypatch):
    from rewardkit.cli import main as cli

    path = tmp_path / "c.yaml"
    path.write_text(f"stage: sft\nmodel: {tiny_lm_dir}\ndataset: {{generator: arithmetic}}\ntrainer: {{max_step: 2}}\n")
    monkeypatch.setattr(sys, "argv", ["rewardkit", "train", str(path), "--set", "trainer.seed=1"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Error:" in err and "Did you mean 'max_steps'" in err and "Traceback" not in err


def test_load_validates_without_training(tmp_path):
    stages = load_stages(
        {"stage": "grpo", "model": "m", "dataset": {"generator": "arithmetic"}, "rewards": "some_preset"}
    )[0]
    assert stages[0].output_dir == str(Path("runs/grpo")) and stages[0].rewards == "some_preset"


def test_train_package_import_is_light():
    code = (
        "import sys, rewardkit.train, rewardkit.train.config, rewardkit.cli.demo; "
        "print([m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.multiprocess
@pytest.mark.skipif(not shutil.which("accelerate"), reason="accelerate CLI not installed")
def test_accelerate_launch_two_processes(tiny_lm_dir, tmp_path):
    import yaml

    cfg = {
        "output_dir": str(tmp_path / "mp"),
        "defaults": {"peft": {"r": 4, "dropout": 0.0}, "trainer": FAST},
        "pipeline": [
            {
                "stage": "sft",
                "model": str(tiny_lm_dir),
                "dataset": {"generator": "arithmetic", "n": 16},
                "trainer": {"max_length": 32},
            },
            {
                "stage": "grpo",
                "model": "@sft",
                "dataset": {"generator": "arithmetic", "n": 16},
                "rewards": {"rewards": {"correct": {"use": "math_exact_match"}}},
                "trainer": {"per_device_train_batch_size": 4, "num_generations": 4, "max_completion_length": 4},
            },
        ],
    }
    path = tmp_path / "mp.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    cmd = accelerate_two_processes(
        "-m",
        "rewardkit",
        "train",
        str(path),
        "--set",
        "pipeline.grpo.trainer.seed=1",
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=420, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-8000:]
    assert proc.stdout.count("2 stage(s)") == 1  # the summary table is printed by rank 0 only
    summary = json.loads((tmp_path / "mp/summary.json").read_text())
    assert [(s["name"], s["steps"]) for s in summary] == [("sft", 2), ("grpo", 2)]
    # One data-parallel run, not two independent ones: 2 steps x 2 rows x 2 ranks = half of the 16 rows.
    assert summary[0]["metrics"]["epoch"] == 0.5
    assert (tmp_path / "mp/grpo/merged/model.safetensors").is_file()
