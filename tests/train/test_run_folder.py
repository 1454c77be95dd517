"""A run folder is a safe place: `rewardkit train` writes only into a new folder or one holding a run,
`--overwrite` deletes only what a run wrote, and no write or delete follows a symlink out of the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewardkit.core.errors import ConfigError, DataError
from rewardkit.core.fileio import atomic_write_json, make_temp_dir
from tests.train.test_resume import _checkpoint, _stage

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300"}


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_train_refuses_a_folder_that_holds_no_run(tiny_lm_dir, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.md").write_text("my notes")
    config = project / "sft.json"
    config.write_text(
        json.dumps(
            {
                "stage": "sft",
                "model": str(tiny_lm_dir),
                "dataset": {"generator": "arithmetic", "n": 4},
                "trainer": {"max_steps": 1, "per_device_train_batch_size": 2, "disable_tqdm": True},
            }
        )
    )
    before = _tree(project)
    for target in (project, Path("/")):
        proc = subprocess.run(
            [sys.executable, "-m", "rewardkit", "train", str(config), "--set", f"output_dir={target}"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env=ENV,
        )
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
        assert f"training would write into {target}, but it holds" in proc.stderr, proc.stderr
        assert "pick a new or empty output_dir" in proc.stderr
    assert _tree(project) == before  # the user's files as they were, no lock left behind
    assert not Path("/.rewardkit-train.lock").exists() and not Path("/.rewardkit-run").exists()


def test_overwrite_refuses_while_the_users_files_are_in_the_run_folder(tmp_path):
    from rewardkit.train.run_plan import plan_stages

    run = tmp_path / "run"
    _checkpoint(run, 2)
    atomic_write_json(run / "rewardkit_stage.json", {}, inside=run)
    (run / "config.yaml").write_text("stage: sft")
    (run / "data.jsonl").write_text("{}\n")
    with pytest.raises(ConfigError, match=r"--overwrite would delete the earlier run in .*config\.yaml.*nothing was"):
        plan_stages([_stage(tmp_path)], "c.yaml", None, True, print)
    assert sorted(p.name for p in run.iterdir()) == [
        ".rewardkit-written.jsonl",
        "checkpoint-2",
        "config.yaml",
        "data.jsonl",
        "rewardkit_stage.json",
    ]
    (run / "config.yaml").unlink()
    (run / "data.jsonl").unlink()
    make_temp_dir(run, ".merged.", inside=run)  # a temporary folder an interrupted atomic write left: the run's
    plan_stages([_stage(tmp_path)], "c.yaml", None, True, print)
    assert list(run.iterdir()) == []


@pytest.mark.parametrize(
    "entry, resume",
    [
        ("best", "latest"),  # best/ linked to another folder: replaced through the link on --resume
        ("best", None),  # ... and deleted through it by --overwrite
        ("README.md", "latest"),  # TRL's model card written through a link
        ("eval_rows.jsonl", "latest"),
        ("inference/step_2.json", "latest"),  # a link inside one of the run's folders
    ],
)
def test_no_write_or_delete_follows_a_symlink_out_of_the_run(tmp_path, entry, resume):
    from rewardkit.train.run_plan import plan_stages

    run = tmp_path / "run"
    _checkpoint(run, 2)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_text("keep")
    link = run / entry
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(elsewhere if entry == "best" else elsewhere / "precious")
    stage = _stage(tmp_path, callbacks=[{"name": "best_checkpoint", "spec": {"rewards": {"em": "exact_match"}}}])
    with pytest.raises(ConfigError, match=rf"{link} is a symlink to {elsewhere}.*never makes links") as caught:
        plan_stages([stage], "c.yaml", resume, resume is None, print)
    assert len(str(caught.value).splitlines()) == 1
    assert (elsewhere / "precious").read_text() == "keep" and link.is_symlink()


@pytest.mark.parametrize("entry", ["adapters/step_2/pipe", "best/pipe", "inference/step_4.json"])
def test_a_named_pipe_among_the_runs_files_is_refused_before_training(tmp_path, entry):
    from rewardkit.train.run_plan import plan_stages

    run = tmp_path / "run"
    _checkpoint(run, 2)
    pipe = run / entry
    pipe.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(pipe)
    callbacks = [{"name": "lora_save"}, {"name": "best_checkpoint", "spec": {"rewards": {"em": "exact_match"}}}]
    stage = _stage(tmp_path, callbacks=callbacks)
    with pytest.raises(
        ConfigError, match=rf"{pipe} is a FIFO \(named pipe\).*holds only the files and folders"
    ) as caught:
        plan_stages([stage], "c.yaml", "latest", False, print)
    assert len(str(caught.value).splitlines()) == 1 and pipe.exists()


def test_run_folder_writes_refuse_a_symlink_below_the_run(tmp_path):
    from rewardkit.callbacks.best_folder import copy_model

    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    elsewhere.mkdir()
    (elsewhere / "file").write_text("keep")
    (run / "eval_rows.jsonl").symlink_to(elsewhere / "file")
    (run / "best").symlink_to(elsewhere)
    (run / "inference").symlink_to(elsewhere)
    with pytest.raises(DataError, match="is a symlink to .*written in place, never through a link"):
        atomic_write_json(run / "eval_rows.jsonl", [], inside=run)
    with pytest.raises(DataError, match="inference: is a symlink"):
        atomic_write_json(run / "inference" / "scores.json", {}, inside=run)
    source = tmp_path / "checkpoint-2"
    source.mkdir()
    (source / "adapter_model.safetensors").write_text("weights")
    with pytest.raises(DataError, match="best: is a symlink"):
        copy_model(source, run / "best", inside=run)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["file"] and (elsewhere / "file").read_text() == "keep"
    atomic_write_json(tmp_path / "link", {"a": 1})  # outside a run a user's link is still followed as before
    (tmp_path / "mine").symlink_to(tmp_path / "link")
    atomic_write_json(tmp_path / "mine", {"a": 2})
    assert json.loads((tmp_path / "link").read_text()) == {"a": 2}


def test_trls_model_card_is_not_written_through_a_link(tiny_lm_dir, trainer_defaults, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from rewardkit.train.trainer_guards import guard_model_card

    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere.md"
    run.mkdir()
    elsewhere.write_text("the user's own file")
    rows = Dataset.from_list([{"prompt": "1+1=", "completion": "2"}] * 2)
    trainer = SFTTrainer(
        model=str(tiny_lm_dir),
        args=SFTConfig(output_dir=str(run), max_steps=1, per_device_train_batch_size=2, **trainer_defaults),
        train_dataset=rows,
    )
    guard_model_card(trainer, run)
    trainer.create_model_card(model_name="m")  # what TRL calls at every save: README.md in the run
    assert (run / "README.md").is_file() and not (run / "README.md").is_symlink()
    (run / "README.md").unlink()
    (run / "README.md").symlink_to(elsewhere)  # appeared while the run trains
    with pytest.raises(DataError, match="README.md: is a symlink to .*never through a link"):
        trainer.create_model_card(model_name="m")
    assert elsewhere.read_text() == "the user's own file"


def test_a_pipeline_stage_folder_linked_elsewhere_is_refused_before_anything_is_written(tmp_path):
    from rewardkit.train import run

    (tmp_path / "pipe").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "pipe" / "sft").symlink_to(elsewhere)
    stage = {"stage": "sft", "model": str(tmp_path), "dataset": {"generator": "arithmetic", "n": 4}}
    config = {"output_dir": str(tmp_path / "pipe"), "pipeline": [stage, {**stage, "name": "second"}]}
    for resume in (None, "latest"):
        with pytest.raises(ConfigError, match=r"pipe/sft is a symlink to .*elsewhere"):
            run(config, resume=resume)
    assert list(elsewhere.iterdir()) == []  # not even the lock was made through the link


def test_a_fifo_among_a_runs_files_is_one_error_not_a_wait(tmp_path):
    """A FIFO where a run keeps its marker, record, lock or log (a received archive may carry one): opening it to
    read blocked `--resume` forever; now one error naming it. A checkpoint's state as a FIFO makes it incomplete."""
    import threading

    from rewardkit.train.log_records import read_log
    from rewardkit.train.resume import finished_record, incomplete_reason, started_settings
    from rewardkit.train.run_lock import read_lock

    run = tmp_path / "run"
    checkpoint = _checkpoint(run, 2)
    (checkpoint / "trainer_state.json").unlink()
    readers = {
        ".rewardkit-run": started_settings,
        "rewardkit_stage.json": finished_record,
        "log_history.jsonl": lambda folder: read_log(folder / "log_history.jsonl"),
        ".rewardkit-train.lock": lambda folder: read_lock(folder / ".rewardkit-train.lock"),
    }
    for name in [*readers, "checkpoint-2/trainer_state.json"]:
        os.mkfifo(run / name)
    outcome: dict = {}

    def read() -> None:
        for name, reader in readers.items():
            try:
                outcome[name] = reader(run)
            except DataError as exc:
                outcome[name] = exc
        outcome["checkpoint"] = incomplete_reason(checkpoint)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), f"blocked on a FIFO after {sorted(outcome)}"
    for name in readers:
        assert isinstance(outcome[name], DataError) and f"{run / name}: is a FIFO" in str(outcome[name]), name
    assert outcome["checkpoint"] == "no trainer_state.json (the process died while saving it)"


@pytest.mark.parametrize("key", ["model", "dataset"])
def test_overwrite_never_deletes_what_the_stage_reads(tmp_path, key):
    """`model: run/merged` (or a dataset inside the run) with output_dir run and --overwrite: the earlier run's
    merged model was deleted, then the run failed on the missing model."""
    from rewardkit.core import written
    from rewardkit.train.config import load_stages
    from rewardkit.train.run_plan import plan_stages

    run = tmp_path / "run"
    _checkpoint(run, 2)
    (run / "merged").mkdir()
    atomic_write_json(run / "merged" / "config.json", {}, inside=run)
    atomic_write_json(run / "eval_rows.jsonl", {}, inside=run)
    written.note(run, run / "merged", "dir")
    cfg = {"stage": "sft", "model": "m", "output_dir": str(run), "dataset": {"generator": "arithmetic"}}
    if key == "model":
        cfg["model"] = str(run / "merged")
    else:
        cfg["dataset"] = {"path": str(run / "eval_rows.jsonl")}
    [stage], _, _ = load_stages(cfg)
    shown = "model" if key == "model" else "dataset.path"
    with pytest.raises(ConfigError, match=rf"--overwrite would delete {run}, but the stage reads its {shown} "):
        plan_stages([stage], "c.yaml", None, True, print)
    assert (run / "merged" / "config.json").is_file() and (run / "eval_rows.jsonl").is_file()
