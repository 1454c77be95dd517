"""What a run reports: the selection metric at every evaluated step in the trackers (TensorBoard event files),
one line per stage event off a terminal, and the end-of-run summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardkit.train.summary import summary_lines


def _grpo(model: Path, tmp_path: Path, trainer: dict) -> dict:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+{i}=", "answer": str(2 * i)}) + "\n" for i in range(8)))
    return {"stage": "grpo", "model": str(model), "output_dir": str(tmp_path / "grpo"),
            "dataset": {"path": str(data), "eval_size": 2}, "peft": {"r": 4, "dropout": 0.0},
            "rewards": {"rewards": {"correct": {"use": "exact_match", "reference": "answer"},
                                    "short": {"use": "brevity", "max_length": 4}}},
            "callbacks": [{"name": "checkpoint_inference", "dataset": "@eval", "reference_columns": ["answer"],
                           "max_new_tokens": 4},
                          {"name": "best_checkpoint", "spec": "@rewards"}],
            "trainer": {"max_steps": 4, "per_device_train_batch_size": 4, "num_generations": 4,
                        "max_completion_length": 4, "logging_steps": 1, "save_strategy": "steps", "save_steps": 2,
                        "eval_strategy": "steps", "eval_steps": 2, "metric_for_best_model": "score",
                        "per_device_eval_batch_size": 4, "activation_checkpointing": False, "seed": 0, **trainer}}


@pytest.mark.slow
def test_selection_metric_and_components_reach_tensorboard_at_every_evaluation(tiny_lm_dir, tmp_path):
    pytest.importorskip("tensorboard")  # in the `test` extra
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rewardkit.train import run

    said: list[str] = []
    [result] = run(_grpo(tiny_lm_dir, tmp_path, {"report_to": ["tensorboard"]}), say=said.append)
    [logdir] = {p.parent for p in (tmp_path / "grpo").rglob("events.out.tfevents*")}  # <output_dir>/runs/<run>/
    events = EventAccumulator(str(logdir))
    events.Reload()
    tags = events.Tags()["scalars"]
    for tag in ("eval/score", "eval/score/correct", "eval/score/short"):
        assert tag in tags, tags
        assert [e.step for e in events.Scalars(tag)] == [2, 4]
    scores = json.loads((tmp_path / "grpo" / "inference" / "scores.json").read_text())
    assert [e.value for e in events.Scalars("eval/score")] == pytest.approx([c["score"] for c in
                                                                             scores["checkpoints"]])
    # Piped output (pytest captures stderr): no progress bars, one line per stage event instead.
    assert said[0] == f"stage grpo: training 4 steps -> {tmp_path / 'grpo'}"
    assert [s.split(" evaluated")[0] for s in said if "evaluated" in s] == ["stage grpo: step 2/4",
                                                                          "stage grpo: step 4/4"]
    assert said[-1] == "stage grpo: finished at step 4"
    # The end-of-run block names the Trainer's best, which is best_checkpoint's best, and what to run next.
    assert result.metric == "eval_score" and result.best_step == scores["best"]["step"]
    assert result.best_score == pytest.approx(scores["best"]["score"])
    assert result.last_step == 4 and result.last_score == pytest.approx(scores["checkpoints"][-1]["score"])
    lines = summary_lines(result, "c.yaml")
    assert lines[1] == f"  best: step {result.best_step}, eval_score = {result.best_score:.4f}"
    assert f"  best model: {tmp_path / 'grpo' / 'best'}" in lines
    assert lines[-1].startswith(f"  next: rewardkit generate --from-run {tmp_path / 'grpo'} ")
