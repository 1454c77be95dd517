"""best_checkpoint's record (scores.json) on resume: a recorded score is reused only for the same step file,
the same reward code and the entry as it was written; anything else is rescored."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from rewardkit.selection.inference_files import write_step_file

ROWS = [{"id": f"r{i}", "prompt": f"{i}?", "output": "yes" if i < 3 else "no", "answer": "yes"} for i in range(4)]


def _reward(folder: Path, value: str):
    """An inline reward loaded from a file the test edits (its code version is that file)."""
    path = folder / "my_reward.py"
    path.write_text(f"def reward(completions, **kw):\n    return [{value} for _ in completions]\n")
    spec = importlib.util.spec_from_file_location("my_reward_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reward


def _rescan(out: Path, func) -> dict:
    """A fresh best_checkpoint (a resumed run) rescanning the sidecar; the record it writes."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    import rewardkit

    cb = rewardkit.get_callback(
        "best_checkpoint",
        spec={"rewards": {"em": {"use": "exact_match", "reference": "answer"}, "mine": {"use": func}}},
    )
    args = TrainingArguments(output_dir=str(out), report_to="none", use_cpu=True)
    cb.on_train_begin(args, TrainerState(global_step=4), TrainerControl())
    return json.loads((out / "inference" / "scores.json").read_text())


def test_a_recorded_score_is_reused_only_for_the_same_file_code_and_entry(tmp_path):
    out = tmp_path / "run"
    for step in (2, 4):
        write_step_file(out / "inference", step, None, ROWS)
    first = _rescan(out, _reward(tmp_path, "1.0"))
    assert [c["components"] for c in first["checkpoints"]] == [{"em": 0.75, "mine": 1.0}] * 2
    # A hand-edited score is not picked as the best: the entry no longer matches its digest, so it is rescored.
    edited = dict(first)
    edited["checkpoints"] = [dict(first["checkpoints"][0], score=99.0, corpus=99.0, item=99.0), first["checkpoints"][1]]
    (out / "inference" / "scores.json").write_text(json.dumps(edited))
    again = _rescan(out, _reward(tmp_path, "1.0"))
    assert again["checkpoints"] == first["checkpoints"] and again["best"] == first["best"]
    # A step file changed since it was scored: rescored from the file.
    write_step_file(out / "inference", 4, None, [dict(r, output="yes") for r in ROWS])
    changed = _rescan(out, _reward(tmp_path, "1.0"))
    assert [c["components"]["em"] for c in changed["checkpoints"]] == [0.75, 1.0]
    assert changed["best"]["step"] == 4
    # The inline reward's code changed (same `module:name` in the spec): every step is rescored with it.
    recoded = _rescan(out, _reward(tmp_path, "0.5"))
    assert [c["components"]["mine"] for c in recoded["checkpoints"]] == [0.5, 0.5]
