"""View coverage (rows whose completion had the scored part) in `select` and the run summary: shown, and a
warning when it drops between checkpoints, since a `missing: none` component never sees the rows it lost."""

from __future__ import annotations

import json
import sys

import pytest

from rewardkit.selection.checkpoints import select

# `reason` after "because": a row without it is None (missing: none), as the official Korean reason metrics are.
SPEC = {
    "rewards": {
        "em": {"use": "exact_match", "completion_view": {"view": "regex", "pattern": "^(\\w+)"}},
        "why": {
            "use": "exact_match",
            "reference": "why",
            "completion_view": {"view": "after", "marker": "because "},
            "missing": "none",
        },
    },
    "combine": "(em + why) / 2",
}


def _files(folder, outputs: dict[int, list[str]]):
    folder.mkdir(parents=True, exist_ok=True)
    for step, outs in outputs.items():
        records = [{"id": i, "prompt": "q", "output": o, "answer": "yes", "why": "rain"} for i, o in enumerate(outs)]
        (folder / f"step_{step}.json").write_text(json.dumps({"step": step, "records": records}))
    return folder


def test_select_shows_coverage_and_warns_when_it_drops(tmp_path, monkeypatch, capsys):
    # step 2: honest, 3 of 4 reasons right; step 4: one copied reason, the rest left out -> a perfect score
    folder = _files(
        tmp_path / "inference",
        {
            2: ["yes because rain", "yes because rain", "yes because rain", "yes because snow"],
            4: ["yes because rain", "yes", "yes", "yes"],
        },
    )
    result = select(folder, SPEC, bootstrap=0)
    assert result.best.step == 4 and result.best.value("corpus") == 1.0  # the gamed checkpoint wins the corpus rule
    assert [c.coverage["why"]["found"] for c in result.checkpoints] == [4, 1]
    [drop] = result.coverage_drops
    assert drop.startswith("after coverage dropped: 4/4 (step_2) -> 1/4 (step_4); why average over those rows only")
    assert "official_strict" in drop
    from rewardkit.cli.main import main

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    for args in ([], ["--json"]):
        monkeypatch.setattr(sys, "argv", ["rewardkit", "select", str(folder), "--spec", str(spec), *args])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 0
        out, err = capsys.readouterr()
        if args:
            data = json.loads(out)
            assert data["coverage_drops"] == [drop]
            assert data["checkpoints"][1]["coverage"]["why"] == {
                "view": "after",
                "found": 1,
                "rows": 4,
                "missing": "none",
            }
        else:
            assert "after coverage" in out and "1/4" in out and "4/4" in out
            assert "Warning: after coverage dropped" in err.replace("\n", " ")


def test_no_warning_when_coverage_holds_or_rises(tmp_path):
    folder = _files(tmp_path / "inference", {2: ["yes", "yes because rain"], 4: ["yes because rain"] * 2})
    assert select(folder, SPEC, bootstrap=0).coverage_drops == []


def test_run_summary_says_the_tie_the_interval_and_the_coverage():
    from rewardkit.train.summary import StageResult, summary_lines

    result = StageResult(
        "grpo",
        "grpo",
        "/runs/g",
        "/runs/g/merged",
        6,
        None,
        1.0,
        metric="eval_score",
        best_step=2,
        best_score=0.0,
        last_step=6,
        last_score=0.0,
        tie="All 3 checkpoints score 0: a tie, the score cannot tell them apart; step_2 is picked only because it "
        "is the earliest.",
        best_interval=[0.0, 0.0],
        coverage="reason coverage: 1/4 rows (rouge1 average over these rows only)",
        coverage_drops=["reason coverage dropped: 4/4 (step_2) -> 1/4 (step_4)"],
    )
    lines = summary_lines(result, "c.yaml")
    assert lines[1] == "  best: step 2, eval_score = 0.0000 (95% CI [0.0000, 0.0000])"
    assert lines[2].startswith("  tie: All 3 checkpoints score 0: a tie")
    assert "  reason coverage: 1/4 rows (rouge1 average over these rows only) (at the best step)" in lines
    assert "  warning: reason coverage dropped: 4/4 (step_2) -> 1/4 (step_4)" in lines


def test_run_summary_finds_a_tie_in_the_trainers_own_evaluations():
    """Without best_checkpoint the tie is read from the Trainer's logged metric, by select's own rule."""
    from transformers import TrainerState, TrainingArguments

    from rewardkit.train.summary import best_of

    state = TrainerState()
    state.log_history = [{"eval_score": 0.0, "step": s} for s in (2, 4, 6)] + [{"loss": 1.0, "step": 6}]
    state.best_global_step, state.best_metric = 2, 0.0
    args = TrainingArguments(output_dir="/tmp/unused", metric_for_best_model="score", report_to=[])
    found = best_of(state, args, [])
    assert found["tie"] == (
        "All 3 checkpoints score 0: a tie, the score cannot tell them apart; step 2 is picked only because it is "
        "the earliest."
    )
    state.log_history[1]["eval_score"] = 0.5
    state.best_global_step, state.best_metric = 4, 0.5
    assert best_of(state, args, [])["tie"] is None
