"""Inference files of checkpoints: read one at a time, step files checked (epoch, step, one file a step)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.selection.conftest import SPEC_DICT, write_step_file


def test_select_holds_one_inference_file_at_a_time(tmp_path, monkeypatch):
    """Memory follows the largest file, not the sum: a file is released before the next one is read."""
    import gc
    import weakref

    from rewardkit.selection import checkpoints as selection
    from rewardkit.selection import inference_files

    for step in (1, 2, 3):
        rows = [{"id": i, "output": str(i % 2), "answer": "1"} for i in range(50)]
        (tmp_path / f"step_{step}.json").write_text(json.dumps({"step": step, "epoch": step, "records": rows}))
    alive: list[weakref.ref] = []
    most = []
    real = inference_files.load_inference

    def tracked(path, completion_key=None):
        gc.collect()
        most.append(sum(ref() is not None for ref in alive))  # files still held when the next one is read
        loaded = real(path, completion_key)
        alive.append(weakref.ref(loaded))
        return loaded

    monkeypatch.setattr(selection, "load_inference", tracked)
    # What the process held before (torch, TRL, ... in a whole-suite run) is left out of the collections below:
    # scanning it took about 1 s a collection. What select reads is made after this, so it is collected.
    gc.freeze()
    try:
        result = selection.select(tmp_path, SPEC_DICT)
        assert [c.step for c in result.checkpoints] == [1, 2, 3] and result.checkpoints[0].corpus == 0.5
        assert max(most) == 0
        result = selection.select(tmp_path, SPEC_DICT, intersection=True)  # reads twice, still one at a time
        assert [c.corpus for c in result.checkpoints] == [0.5] * 3 and max(most) == 0
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("epoch", ["NaN", "Infinity", "-Infinity", "1e400", "-1"])
def test_step_file_epoch_must_be_finite_and_not_negative(tmp_path, epoch):
    from rewardkit.core.errors import DataError
    from rewardkit.selection.inference_files import load_inference

    write_step_file(tmp_path, "step_1.json", epoch=epoch)
    with pytest.raises(DataError, match="step_1.json: 'epoch' must be a finite number >= 0"):
        load_inference(tmp_path / "step_1.json")


def test_select_json_never_prints_a_bare_nan(scoring):
    write_step_file(scoring / "inf", "step_1.json", epoch="NaN")
    proc = run_cli("select", "inf", "--spec", "spec.yaml", "--json", cwd=scoring)
    assert proc.returncode == 2 and "'epoch' must be a finite number >= 0" in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_two_files_of_one_step_are_refused(tmp_path):
    from rewardkit.core.errors import DataError
    from rewardkit.selection.inference_files import find_inference_files, step_files

    for name in ("step_1.json", "step_01.json", "step_001.json"):
        write_step_file(tmp_path, name)
    for call in (
        lambda: find_inference_files(tmp_path),
        lambda: step_files(tmp_path),
        lambda: find_inference_files(tmp_path, ["step_1", "step_01"]),
    ):
        with pytest.raises(DataError, match=r"step_0.*\.json and .*step_1.json are all step 1. Hint: keep one"):
            call()
    for name in ("step_01.json", "step_001.json"):
        (tmp_path / name).unlink()
    assert list(step_files(tmp_path)) == [1]


def test_step_in_the_file_must_match_its_name(tmp_path):
    from rewardkit.core.errors import DataError
    from rewardkit.selection.inference_files import load_inference

    write_step_file(tmp_path, "step_5.json", step=10)
    with pytest.raises(DataError, match="step_5.json: the file says step 10 but its name says step 5. Hint:"):
        load_inference(tmp_path / "step_5.json")
    write_step_file(tmp_path, "step_5.json", step=5)
    assert load_inference(tmp_path / "step_5.json").step == 5
