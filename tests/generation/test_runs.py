"""Run folders read by `--from-run`: absolute folders in the records, and malformed stage records as one error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_a_run_folder_does_not_depend_on_the_training_directory(tiny_lm_dir, tmp_path, monkeypatch):
    """`model: lmrel` (relative) trained in one directory; `--from-run` read from another directory that has its
    own `lmrel` folder still finds the base model the adapter was trained on."""
    from rewardkit.generation import resolve_run
    from rewardkit.train import run as train

    workdir, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    workdir.mkdir()
    (elsewhere / "lmrel").mkdir(parents=True)  # a same-named folder that must not be taken as the base model
    shutil.copytree(tiny_lm_dir, workdir / "lmrel")
    (workdir / "train.jsonl").write_text(
        "".join(json.dumps({"prompt": f"q{i}", "completion": "a"}) + "\n" for i in range(4))
    )
    monkeypatch.chdir(workdir)
    config = {
        "stage": "sft",
        "model": "lmrel",
        "output_dir": "run",
        "dataset": {"path": "train.jsonl"},
        "peft": {"r": 2, "dropout": 0.0},
        "trainer": {
            "max_steps": 1,
            "per_device_train_batch_size": 4,
            "max_length": 32,
            "disable_tqdm": True,
            "activation_checkpointing": False,
            "save_strategy": "no",
        },
    }
    train(config)
    record = json.loads((workdir / "run" / "rewardkit_stage.json").read_text())
    assert record["base_model"] == str(workdir / "lmrel")
    assert record["config"]["model"] == str(workdir / "lmrel")
    assert record["config"]["dataset"]["path"] == str(workdir / "train.jsonl")
    assert record["output_dir"] == str(workdir / "run") and record["working_dir"] == str(workdir)
    assert record["model"] == str(workdir / "run" / "merged")  # what a later `@sft` loads
    monkeypatch.chdir(elsewhere)
    settings = resolve_run(workdir / "run")
    assert settings.model == str(workdir / "lmrel") and settings.adapter == str(workdir / "run" / "final")


def test_a_pipeline_summary_records_absolute_folders(tiny_lm_dir, tmp_path, monkeypatch):
    """summary.json (what `--from-run <pipeline root>` reads first) holds absolute folders, like the stage records:
    read from another directory, its last stage is still the one that trained."""
    from rewardkit.generation import resolve_run
    from rewardkit.train import run as train

    workdir, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (elsewhere / "run" / "b").mkdir(parents=True)  # same-named relative folders where the summary is read
    shutil.copytree(tiny_lm_dir, workdir / "lmrel")
    (workdir / "train.jsonl").write_text(
        "".join(json.dumps({"prompt": f"q{i}", "completion": "a"}) + "\n" for i in range(4))
    )
    monkeypatch.chdir(workdir)
    trainer = {
        "max_steps": 1,
        "per_device_train_batch_size": 4,
        "max_length": 32,
        "disable_tqdm": True,
        "activation_checkpointing": False,
        "save_strategy": "no",
    }
    stage = {"stage": "sft", "dataset": {"path": "train.jsonl"}, "peft": {"r": 2, "dropout": 0.0}, "trainer": trainer}
    train(
        {
            "output_dir": "run",
            "pipeline": [{**stage, "name": "a", "model": "lmrel"}, {**stage, "name": "b", "model": "@a"}],
        }
    )
    summary = json.loads((workdir / "run" / "summary.json").read_text())
    assert [s["output_dir"] for s in summary] == [str(workdir / "run" / "a"), str(workdir / "run" / "b")]
    assert summary[1]["model"] == str(workdir / "run" / "b" / "merged")
    monkeypatch.chdir(elsewhere)
    assert resolve_run(workdir / "run").run_dir == str(workdir / "run" / "b")


def _stage_folder(tmp_path: Path, **dataset) -> Path:
    stage = tmp_path / "run"
    (stage / "final").mkdir(parents=True)
    (stage / "final" / "adapter_config.json").write_text("{}")
    config = {"stage": "sft", "model": "/models/base", "dataset": {"path": "x.jsonl", **dataset}}
    (stage / "rewardkit_stage.json").write_text(
        json.dumps({"name": "sft", "base_model": "/models/base", "config": config})
    )
    return stage


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"chat": "false"}, r"config.dataset.chat: Input should be a valid boolean"),
        ({"columns": ["ab"]}, r"config.dataset.columns: Input should be a valid dictionary"),
        ({"columns": 5}, r"config.dataset.columns: Input should be a valid dictionary"),
        ({"system_prompt": 7}, r"config.dataset.system_prompt: Input should be a valid string"),
    ],
    ids=["chat-as-text", "columns-as-list", "columns-as-number", "system-prompt-number"],
)
def test_a_malformed_stage_record_is_one_error(tmp_path, change, expected):
    from rewardkit.core.errors import ConfigError
    from rewardkit.generation import resolve_run

    stage = _stage_folder(tmp_path, **change)
    with pytest.raises(ConfigError, match=f"rewardkit_stage.json: {expected}"):
        resolve_run(stage)


def test_a_stage_record_whose_dataset_is_text_is_one_cli_line(tmp_path):
    stage = _stage_folder(tmp_path)
    record = json.loads((stage / "rewardkit_stage.json").read_text())
    record["config"]["dataset"] = "x"
    (stage / "rewardkit_stage.json").write_text(json.dumps(record))
    (tmp_path / "rows.jsonl").write_text('{"prompt": "p"}\n')
    proc = run_cli(
        "generate", "--from-run", stage, "-i", tmp_path / "rows.jsonl", "-o", tmp_path / "out.jsonl", timeout=120
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "rewardkit_stage.json: config.dataset: Input should be" in proc.stderr


def test_a_summary_stage_name_cannot_leave_the_run(tmp_path):
    from rewardkit.core.errors import ConfigError
    from rewardkit.generation import resolve_run

    _stage_folder(tmp_path / "outside_run")  # a real stage record outside the pipeline's folder
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "summary.json").write_text(json.dumps([{"name": "../outside_run/run"}]))
    with pytest.raises(ConfigError, match="summary.json stage name '../outside_run/run' escapes"):
        resolve_run(pipe)
