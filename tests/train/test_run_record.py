"""A run folder's record of what rewardkit wrote (core/written.py): `--overwrite`, demo/--smoke re-runs, in-run
replacements and checkpoint rotation delete or replace only that, and refuse (or keep, mid-run) a user's file
inside the run's own folders. One real GRPO run (2 steps, a tiny model) is shared by the tests; each test that
deletes works on a copy."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rewardkit.core import written
from rewardkit.core.errors import ConfigError
from rewardkit.train.run_lock import LOCK, locked
from tests.train.test_resume import KILL

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300"}


def _config(model: Path, data: Path, out: Path, **trainer: object) -> dict:
    return {
        "stage": "grpo",
        "model": str(model),
        "output_dir": str(out),
        "dataset": {"path": str(data), "eval_size": 2},
        "peft": {"r": 4, "alpha": 8, "dropout": 0.0},
        "rewards": {"rewards": {"correct": {"use": "exact_match", "reference": "answer"}}},
        "callbacks": [
            {"name": "lora_save"},
            {"name": "checkpoint_inference", "dataset": "@eval", "reference_columns": ["answer"], "max_new_tokens": 4},
            {"name": "best_checkpoint", "spec": "@rewards", "top_k": 1},
        ],
        "trainer": {
            "max_steps": 2,
            "per_device_train_batch_size": 4,
            "num_generations": 4,
            "max_completion_length": 4,
            "learning_rate": 0.05,
            "logging_steps": 1,
            "save_strategy": "steps",
            "save_steps": 1,
            "eval_strategy": "steps",
            "eval_steps": 1,
            "metric_for_best_model": "score",
            "per_device_eval_batch_size": 4,
            "activation_checkpointing": False,
            "disable_tqdm": True,
            "seed": 0,
            "dataloader_num_workers": 0,
            **trainer,
        },
    }


def _cli(*args: object, cwd: Path, script: list[str] | None = None) -> subprocess.CompletedProcess:
    command = script or [sys.executable, "-m", "rewardkit"]
    return subprocess.run(
        [*command, "train", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd, env=ENV
    )


def _tree(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tiny_lm_dir, tmp_path_factory):
    """(root, config maker, the run folder of one finished 2-step run with lora_save, inference and best/)."""
    root = tmp_path_factory.mktemp("record")
    data = root / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+{i}=", "answer": str(2 * i)}) + "\n" for i in range(10)))

    def config(name: str, **trainer: object) -> Path:
        path = root / f"{name}.json"
        path.write_text(json.dumps(_config(tiny_lm_dir, data, root / name, **trainer)))
        return path

    proc = _cli(config("run", report_to="tensorboard"), cwd=root)  # TensorBoard's files under runs/ too
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, config, root / "run"


def _copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)  # a copied run keeps its record: its paths are relative
    return copy


def _overwrite(folder: Path, resume: str | None = None) -> list[str]:
    """What `--overwrite` (or `--resume`) does to `folder` before anything trains."""
    from rewardkit.train.config import load_stages
    from rewardkit.train.run_plan import plan_stages

    [stage], _, _ = load_stages(
        {"stage": "sft", "model": "m", "output_dir": str(folder), "dataset": {"generator": "arithmetic"}}
    )
    said: list[str] = []
    plan_stages([stage], "c.yaml", resume, resume is None, said.append)
    return said


@pytest.mark.slow
def test_the_run_recorded_every_file_it_wrote(finished):
    _, _, run = finished
    assert written.first_unrecorded(run) is None
    names = set(_tree(run))
    for expected in ("checkpoint-2/optimizer.pt", "final/adapter_model.safetensors", "best/adapter_config.json"):
        assert expected in names
    assert any(n.startswith("adapters/step_") for n in names) and "inference/step_1.json" in names
    assert any(n.startswith("runs/") and "events.out.tfevents." in n for n in names)


@pytest.mark.slow
def test_overwrite_refuses_a_users_file_inside_the_runs_folders(finished):
    root, config, run = finished
    before = _tree(run)
    # through the CLI: one line, exit 2, nothing deleted
    (run / "inference" / "notes.md").write_text("my notes")
    try:
        proc = _cli(config("run"), "--overwrite", cwd=root)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
        assert "--overwrite would delete the earlier run in" in proc.stderr
        assert "'inference/notes.md' (not written by the run)" in proc.stderr and "nothing was deleted" in proc.stderr
        assert _tree(run) == {**before, "inference/notes.md": 8}
    finally:
        (run / "inference" / "notes.md").unlink()
    for place in ("checkpoint-2/mynote", "best/mynote", "adapters/step_1/mynote", "final/mynote"):
        (run / place).write_text("mine")
        try:
            with pytest.raises(ConfigError, match=rf"but it holds '{place}' \(not written by the run\)"):
                _overwrite(run)
            assert _tree(run) == {**before, place: 4}
        finally:
            (run / place).unlink()


@pytest.mark.slow
def test_overwrite_refuses_a_file_replaced_or_edited_since_and_an_unrecorded_run(finished, tmp_path):
    run = _copy(finished[2], tmp_path)
    rows = (run / "eval_rows.jsonl").read_bytes()
    (run / "eval_rows.jsonl").write_text("the user's own rows\n")
    with pytest.raises(ConfigError, match=r"'eval_rows.jsonl' \(changed since the run wrote it: 20 bytes, not \d+\)"):
        _overwrite(run)
    (run / "eval_rows.jsonl").write_bytes(rows)
    for name in ("eval_rows.jsonl", "README.md", "final/adapter_config.json"):  # an edit that keeps the byte count
        text = (run / name).read_bytes()
        (run / name).write_bytes(text[:-2] + text[-2:][::-1] if text[-2:] != text[-2:][::-1] else b"x" + text[1:])
        with pytest.raises(ConfigError, match=rf"'{name}' \(changed since the run wrote it: other content of the same"):
            _overwrite(run)
        (run / name).write_bytes(text)
    (run / "eval_rows.jsonl").unlink()
    (run / written.RECORD).unlink()  # a run folder from a rewardkit that kept no record
    with pytest.raises(ConfigError, match="kept no record of what it wrote.*nothing is deleted"):
        _overwrite(run)
    assert (run / "final" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_overwrite_deletes_what_the_run_wrote_and_a_forged_record_reaches_nothing_outside(finished, tmp_path):
    run = _copy(finished[2], tmp_path)
    outside = tmp_path / "x"
    outside.write_text("precious")
    with open(run / written.RECORD, "a", encoding="utf-8") as record:  # a received archive's forged lines
        for path in ("../x", str(outside), "/etc/passwd", "best/../../x", ""):
            record.write(json.dumps({"p": path, "k": "file", "s": 8}) + "\n")
            record.write(json.dumps({"p": path, "k": "scratch"}) + "\n")
    assert _overwrite(run) == [f"overwrite: deleted the earlier run in {run}."]
    assert list(run.iterdir()) == [] and outside.read_text() == "precious"


@pytest.mark.slow
def test_a_forged_line_or_a_temp_like_name_does_not_hand_a_users_file_to_overwrite(finished, tmp_path):
    run = _copy(finished[2], tmp_path)
    (run / "inference" / "notes.md").write_text("mine")  # the user's, added after the archive arrived
    (run / "inference" / ".scores.json.mine.tmp").write_text("mine")  # named like a killed write's temp file
    with pytest.raises(ConfigError, match=r"inference/.scores.json.mine.tmp' \(not written by the run\)"):
        _overwrite(run)
    (run / "inference" / ".scores.json.mine.tmp").unlink()
    with open(run / written.RECORD, "a", encoding="utf-8") as record:  # lines an archive's sender added
        record.write(json.dumps({"p": "inference", "k": "scratch"}) + "\n")
        record.write(json.dumps({"p": "checkpoint-2", "k": "scratch"}) + "\n")
    with pytest.raises(ConfigError, match=r"inference/notes.md' \(not written by the run\)"):
        _overwrite(run)
    (run / "inference" / "notes.md").unlink()
    with open(run / written.RECORD, "a", encoding="utf-8") as record:
        record.write(json.dumps({"p": "inference", "k": "pending"}) + "\n")
    (run / "inference" / "config.json").write_text("{}")  # a Trainer file name in a folder no save goes into
    with pytest.raises(ConfigError, match=r"inference/config.json' \(not written by the run\)"):
        _overwrite(run)
    assert (run / "inference" / "config.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("rel", ["final/README.md", "final/adapter_config.json", "checkpoint-2/trainer_state.json"])
def test_an_edited_file_in_a_finished_save_folder_is_not_the_runs_by_its_name(finished, tmp_path, rel):
    # final/ and checkpoint-N/ stay "pending" (another rank's late file is the run's by name); a file recorded there
    # since is known by its record: the user's edit of the model card or a config is refused, not deleted
    run = _copy(finished[2], tmp_path)
    with open(run / rel, "a", encoding="utf-8") as handle:
        handle.write("\nmy notes\n")
    edited = (run / rel).read_text()
    with pytest.raises(ConfigError, match=rf"'{rel}' \(changed since the run wrote it"):
        _overwrite(run)
    assert (run / rel).read_text() == edited


@pytest.mark.slow
@pytest.mark.parametrize("rel", ["final/config.json", "checkpoint-2/config.json", "checkpoint-2/README.md"])
def test_a_trainer_named_file_added_to_a_finished_save_folder_is_the_users(finished, tmp_path, rel):
    # once a save's files are recorded its folder is "saved": only what another rank writes late (its RNG state, its
    # shards) is the run's unrecorded; a config.json the user adds to make final/ loadable is theirs
    run = _copy(finished[2], tmp_path)
    (run / rel).unlink(missing_ok=True)
    (run / rel).write_text('{"mine": true}')
    with pytest.raises(ConfigError, match=rf"'{rel}' \((not written by the run|changed since the run wrote it)"):
        _overwrite(run)
    assert (run / rel).read_text() == '{"mine": true}'
    (run / rel).unlink()
    (run / "checkpoint-2" / "rng_state_1.pth").write_bytes(b"rank 1")  # another rank's, recorded by none
    _overwrite(run)
    assert not (run / "checkpoint-2").exists()


def test_a_record_line_of_the_wrong_json_types_is_skipped_not_a_traceback(tmp_path):
    # a received archive's record: kinds, sizes, digests and paths of other JSON types, lines that are not objects
    run = tmp_path / "run"
    (run / "inference").mkdir(parents=True)
    (run / "inference" / "step_1.json").write_text("{}")
    (run / "notes.md").write_text("mine")
    lines = [
        {"p": "notes.md", "k": ["appended"]},
        {"p": "notes.md", "k": {"file": 1}},
        {"p": "notes.md", "k": "file", "s": [4], "h": ["x"]},
        {"p": ["notes.md"], "k": "appended"},
        [1, 2],
        "notes.md",
        {"p": "inference", "k": "dir"},
        {"p": "inference/step_1.json", "k": "file", "s": 2, "h": written.data_digest(b"{}")},
    ]
    (run / written.RECORD).write_text("".join(json.dumps(line) + "\n" for line in lines))
    found = written.first_unrecorded(run)
    assert found is not None and found.path == run / "notes.md" and found.why == "not written by the run"
    kept = written.remove_recorded(run, [run / "inference", run / "notes.md"])
    assert [found.path for found in kept] == [run / "notes.md"] and (run / "notes.md").read_text() == "mine"
    assert not (run / "inference").exists()  # the well-formed lines still count


@pytest.mark.slow
def test_overwrite_after_a_kill_mid_checkpoint_save(finished, tmp_path):
    root, config, _ = finished
    script = [sys.executable, str(KILL), "in-save", "2", "killed", "--"]
    proc = _cli(config("killed", max_steps=3), cwd=root, script=script)
    assert proc.returncode == -9, proc.stderr[-3000:]
    run = root / "killed"
    assert (run / "checkpoint-2" / "trainer_state.json").read_text() == '{"global_step": '  # cut by the kill
    # the Trainer's files of a pending save are the run's (and the lock the killed run left)
    assert written.first_unrecorded(run, None, frozenset({LOCK})) is None
    (run / "checkpoint-2" / "notes.md").write_text("mine")  # ... a user's file there is not
    with pytest.raises(ConfigError, match=r"'checkpoint-2/notes.md' \(not written by the run\)"):
        _overwrite(run)
    (run / "checkpoint-2" / "notes.md").unlink()
    _overwrite(run, resume="latest")  # a resume sets the cut checkpoint aside: its record moves with it
    assert not (run / "checkpoint-2").exists() and next((run / "incomplete").iterdir()).name.startswith("checkpoint-2-")
    assert written.first_unrecorded(run, None, frozenset({LOCK})) is None
    _overwrite(run)
    assert [p.name for p in run.iterdir()] == [LOCK]  # kept: --overwrite runs under the lock


def test_a_demo_or_smoke_folder_with_a_users_note_is_refused(tmp_path):
    from rewardkit.cli.demo import prepare_output
    from rewardkit.core.fileio import atomic_write_text

    out = prepare_output(tmp_path / "demo")
    atomic_write_text(out / "data" / "val.jsonl", "{}\n", inside=out)  # what the demo writes (recorded)
    with locked(out / "grpo", print):  # a stage folder made for its run (recorded in the demo's record) ...
        atomic_write_text(out / "grpo" / "inference" / "step_1.json", "{}", inside=out / "grpo")  # ... its own
    (out / "grpo" / "backup").mkdir()  # a copy of another run the user keeps there: its record speaks not
    atomic_write_text(out / "grpo" / "backup" / "eval_rows.jsonl", "{}\n", inside=out / "grpo" / "backup")
    with pytest.raises(ConfigError, match=r"empties this folder, but .*grpo/backup/\S+ is not written"):
        prepare_output(out)
    shutil.rmtree(out / "grpo" / "backup")
    (out / "grpo" / "inference" / "notes.md").write_text("mine")
    with pytest.raises(ConfigError, match=r"`rewardkit demo` empties this folder, but .*notes\.md is not written"):
        prepare_output(out)
    assert (out / "data" / "val.jsonl").is_file()
    (out / "grpo" / "inference" / "notes.md").unlink()
    prepare_output(out)
    assert not (out / "data").exists() and not (out / "grpo").exists()
    (out / written.RECORD).unlink()  # a demo folder from a rewardkit that kept no record is not emptied
    (out / "data").mkdir()
    with pytest.raises(ConfigError, match="kept no record of what it wrote there"):
        prepare_output(out)


def test_best_replaced_mid_run_keeps_a_users_note(tmp_path, caplog):
    from rewardkit.callbacks.best_folder import copy_model

    run, source = tmp_path / "run", tmp_path / "checkpoint-2"
    source.mkdir()
    (source / "adapter_model.safetensors").write_text("weights")
    copy_model(source, run / "best", inside=run)
    (run / "best" / "notes.md").write_text("mine")
    (run / "best" / "adapter_model.safetensors").write_text("the user's own weights")  # a clash: kept beside
    (source / "adapter_model.safetensors").write_text("better weights")
    with caplog.at_level(logging.WARNING, logger="rewardkit"):
        copy_model(source, run / "best", inside=run)
    assert (run / "best" / "notes.md").read_text() == "mine"
    assert (run / "best" / "adapter_model.safetensors").read_text() == "better weights"
    assert (run / "best" / "adapter_model.safetensors.kept").read_text() == "the user's own weights"
    assert "notes.md was not written by this run; it is kept" in caplog.text
    assert written.first_unrecorded(run).path.name in ("adapter_model.safetensors.kept", "notes.md")
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == [written.RECORD]


@pytest.mark.slow
def test_checkpoint_rotation_keeps_a_users_file(finished, tmp_path, caplog):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from rewardkit.train.save_record import RecordSaves

    run = _copy(finished[2], tmp_path)
    (run / "checkpoint-1" / "notes.md").write_text("mine")
    args = TrainingArguments(output_dir=str(run), report_to="none", use_cpu=True)
    state = TrainerState(global_step=2)
    with caplog.at_level(logging.WARNING, logger="rewardkit"):
        RecordSaves(run, limit=1).on_save(args, state, TrainerControl())  # the Trainer's save_total_limit=1
    assert sorted(p.name for p in (run / "checkpoint-1").iterdir()) == ["notes.md"]
    assert "save_total_limit: " in caplog.text and "notes.md was not written by this run" in caplog.text
    assert (run / "checkpoint-2" / "optimizer.pt").is_file()


def test_an_append_never_grows_a_hard_link_outside_the_run(tmp_path):
    # a record or log hard-linked to a file outside (a `cp -al` backup, a received folder's link): appending in place
    # wrote the run's lines into that other file
    from rewardkit.core.fileio import append_jsonl

    run, backup = tmp_path / "run", tmp_path / "backup"
    run.mkdir()
    backup.mkdir()
    (backup / "notes.txt").write_text("mine\n")
    (backup / "log.jsonl").write_text("{}\n")
    os.link(backup / "notes.txt", run / written.RECORD)
    os.link(backup / "log.jsonl", run / "log_history.jsonl")
    written.note(run, run / "eval_rows.jsonl", "file", 3)
    append_jsonl(run / "log_history.jsonl", {"step": 1}, inside=run)
    assert (backup / "notes.txt").read_text() == "mine\n" and (backup / "log.jsonl").read_text() == "{}\n"
    assert (run / written.RECORD).read_text().startswith("mine\n") and "eval_rows.jsonl" in (
        run / written.RECORD
    ).read_text()
    assert (run / "log_history.jsonl").read_text() == '{}\n{"step": 1}\n'
    assert os.stat(run / written.RECORD).st_nlink == 1 and not list(run.glob(".*.tmp"))


def test_records_from_eight_threads_at_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from rewardkit.core.fileio import atomic_write_text

    def write(i: int) -> None:
        for j in range(20):
            atomic_write_text(tmp_path / f"d{i}" / f"f{j}.txt", "x" * (i + j), inside=tmp_path)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    record = written.Record.read(tmp_path)
    assert record is not None and len(record.entries) == 160 and written.first_unrecorded(tmp_path) is None


@pytest.mark.slow
def test_top_k_prune_keeps_a_users_file_in_an_adapter_folder(tiny_lm_dir, trainer_defaults, tmp_path):
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    import rewardkit
    from tests.callbacks.test_callbacks import SPEC, _lora

    class Note(TrainerCallback):  # the user drops a note into each adapter folder as it appears
        def on_save(self, args, state, control, **kwargs):
            (tmp_path / "adapters" / f"step_{state.global_step}" / "notes.md").write_text("mine")

    val = [{"prompt": f"Count to {i}:", "answer": str(i)} for i in range(4)]
    callbacks = [
        rewardkit.get_callback("lora_save"),
        Note(),
        rewardkit.get_callback(
            "checkpoint_inference", dataset=val, reference_columns=["answer"], on="save", max_new_tokens=4
        ),
        rewardkit.get_callback("best_checkpoint", spec=SPEC, aggregate="item", top_k=1),
    ]
    args = GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=4,
        **{**trainer_defaults, "save_strategy": "steps", "save_steps": 1},
    )
    trainer = GRPOTrainer(
        model=str(tiny_lm_dir),
        reward_funcs=rewardkit.get_reward("brevity", max_length=8),
        args=args,
        train_dataset=Dataset.from_list(val),
        peft_config=_lora(),
        callbacks=callbacks,
    )
    with pytest.warns(UserWarning, match=r"top_k=1 keeps 1 file\(s\) in .*step_\d this run did not write"):
        trainer.train()
    folders = {p.name: sorted(q.name for q in p.iterdir()) for p in (tmp_path / "adapters").iterdir()}
    assert sorted(folders) == ["step_1", "step_2"]  # the pruned one stays, holding only the user's note
    assert sorted(len(names) for names in folders.values())[0] == 1
    assert ["notes.md"] in folders.values() and all("notes.md" in names for names in folders.values())


def test_a_demo_killed_in_its_first_stage_is_emptied_by_the_next(tmp_path):
    from rewardkit.cli.demo import prepare_output
    from tests.conftest import holding_lock

    out = prepare_output(tmp_path / "demo")
    with holding_lock(out / "grpo"):  # the stage folders are made for their locks; then the run is SIGKILLed
        pass
    assert [p.name for p in (out / "grpo").iterdir()] == [LOCK]  # a stale lock in a folder the run made
    prepare_output(out)
    assert not (out / "grpo").exists()


@pytest.mark.slow
def test_a_run_file_the_user_replaced_is_kept_when_the_run_writes_it_again(finished, tmp_path, caplog):
    from rewardkit.core.fileio import atomic_write_json

    run = _copy(finished[2], tmp_path)
    scores = run / "inference" / "scores.json"
    scores.write_text('{"mine": true}')  # the user's own edit of a file the run wrote
    with caplog.at_level(logging.WARNING, logger="rewardkit"):
        atomic_write_json(scores, {"best": None}, inside=run)  # what the run does at its next evaluation
    assert json.loads(scores.read_text()) == {"best": None}
    assert (run / "inference" / "scores.json.kept").read_text() == '{"mine": true}'
    assert "scores.json was changed since the run wrote it" in caplog.text and "kept as scores.json.kept" in caplog.text
    atomic_write_json(scores, {"best": 1}, inside=run)  # the run's own file is replaced as before
    assert not (run / "inference" / "scores.json.kept2").exists()
