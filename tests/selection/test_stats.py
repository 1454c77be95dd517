"""The paired bootstrap of `rewardkit select` / best_checkpoint, ties said out loud, and the training reward."""

from __future__ import annotations

import json
import random
import sys

import numpy as np
import pytest

from rewardkit import ConfigError, compose
from rewardkit.selection.checkpoints import CheckpointScore, score_checkpoint, select
from rewardkit.selection.stats import bootstrap_scores, resample_counts
from rewardkit.selection.training_reward import divergence, training_rewards

SPEC = {
    "rewards": {"em": {"use": "exact_match"}, "num": {"use": "math_exact_match", "reference": "gold"}},
    "combine": "min(em, 0.9) / (num + 1) + em",
}  # non-linear, divides: the vectorised evaluator must agree


def _rows(seed: int, n: int = 40) -> list[dict]:
    rnd = random.Random(seed)
    return [
        {"id": i, "completion": rnd.choice(["4", "5", "x"]), "answer": "4", "gold": rnd.choice(["4", "no number"])}
        for i in range(n)
    ]


def test_vectorised_resamples_equal_the_corpus_rule_applied_to_each_resample():
    composed = compose(SPEC)
    cps = [
        score_checkpoint(
            composed, _rows(s), name=f"c{s}", file=f"c{s}", step=s, epoch=None, completion_key="completion"
        )
        for s in range(3)
    ]
    fast = bootstrap_scores(composed, cps, "corpus", resamples=25, seed=7)
    counts = resample_counts(40, 25, 7)
    order = sorted(range(40), key=str)  # the bootstrap's row order: ids sorted as text
    for i, c in enumerate(cps):
        for b in range(25):
            drawn = [order[k] for k in range(40) for _ in range(int(counts[b, k]))]
            means = {}
            for alias, values in c.row_scores["components"].items():
                present = [values[j] for j in drawn if values[j] is not None]
                means[alias] = sum(present) / len(present) if present else None
            slow = composed.combine_row(means)
            assert (slow is None and np.isnan(fast[i, b])) or fast[i, b] == pytest.approx(slow, abs=1e-12)
    item = bootstrap_scores(composed, cps, "item", resamples=5, seed=1)
    combined = [v for v in cps[0].row_scores["combined"]]
    counts = resample_counts(40, 5, 1)
    expected = sum(counts[0, k] * combined[j] for k, j in enumerate(order) if combined[j] is not None) / sum(
        counts[0, k] for k, j in enumerate(order) if combined[j] is not None
    )
    assert item[0, 0] == pytest.approx(expected)


def _files(folder, outputs: dict[int, list[str]]):
    folder.mkdir(parents=True, exist_ok=True)
    for step, outs in outputs.items():
        records = [{"id": i, "prompt": "q", "output": o, "answer": "yes"} for i, o in enumerate(outs)]
        (folder / f"step_{step}.json").write_text(json.dumps({"step": step, "records": records}))
    return folder


EM = {"rewards": {"em": {"use": "exact_match"}}}


def test_intervals_ties_and_earliest_tied(tmp_path):
    # 60 rows: step 10 right on 40, step 20 on 42 (not significantly better), step 30 on 60.
    outs = {10: ["yes"] * 40 + ["no"] * 20, 20: ["yes"] * 42 + ["no"] * 18, 30: ["yes"] * 60}
    folder = _files(tmp_path / "inference", outs)
    res = select(folder, EM)
    by = {c.step: c for c in res.checkpoints}
    assert res.best.step == 30 and res.tie is None
    assert by[30].ci_low == by[30].ci_high == 1.0 and by[30].tied_with_best
    assert by[10].ci_low < 40 / 60 < by[10].ci_high and by[10].diff_high < 0 and not by[10].tied_with_best
    assert select(folder, EM, seed=0).to_dict() == res.to_dict()  # seeded: reruns agree
    outs[30] = ["yes"] * 43 + ["no"] * 17
    _files(folder, outs)
    res = select(folder, EM, policy="earliest_tied")
    by = {c.step: c for c in res.checkpoints}
    assert by[30].value("corpus") > by[10].value("corpus") and by[10].tied_with_best
    assert res.best.step == 10 and res.policy == "earliest_tied"
    assert select(folder, EM).best.step == 30
    with pytest.raises(ConfigError, match="earliest_tied. needs the bootstrap"):
        select(folder, EM, policy="earliest_tied", bootstrap=0)
    off = select(folder, EM, bootstrap=0)
    assert all(c.ci_low is None for c in off.checkpoints) and off.best.step == 30


def test_all_equal_scores_are_said_out_loud(tmp_path, monkeypatch, capsys):
    folder = _files(tmp_path / "inference", {5: ["yes", "no"], 10: ["yes", "no"], 15: ["yes", "no"]})
    res = select(folder, EM)
    assert res.best.step == 5 and res.tie.startswith("All 3 checkpoints score 0.5: a tie")
    from rewardkit.cli.main import main

    spec = tmp_path / "em.json"
    spec.write_text(json.dumps(EM))
    for args in (["--json"], []):
        monkeypatch.setattr(sys, "argv", ["rewardkit", "select", str(folder), "--spec", str(spec), *args])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 0
        out = capsys.readouterr().out
        if args:
            data = json.loads(out)
            assert data["tie"].startswith("All 3") and data["bootstrap"]["resamples"] == 1000
            assert all(
                {"ci_low", "ci_high", "tied_with_best"} <= set(c) and "row_scores" not in c for c in data["checkpoints"]
            )
        else:
            assert "95% CI" in out and "Tie: All 3 checkpoints" in out


def test_training_reward_from_trainer_state_beside_the_score(tmp_path):
    run = tmp_path / "run"
    folder = _files(run / "inference", {2: ["yes", "no"], 4: ["no", "no"]})
    history = [
        {"step": 1, "reward": 0.1, "rewards/fmt/mean": 0.1, "rewards/fmt/std": 0.0},
        {"step": 2, "reward": 0.5, "rewards/fmt/mean": 0.5},
        {"step": 2, "eval_loss": 1.0},
        {"step": 3, "reward": 0.9, "rewards/fmt/mean": 0.9},
    ]
    (run / "checkpoint-4").mkdir()
    (run / "checkpoint-4" / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    res = select(folder, EM)
    by = {c.step: c for c in res.checkpoints}
    assert (by[2].train_reward, by[2].train_rewards) == (0.5, {"fmt": 0.5})
    assert by[4].train_reward == 0.9  # the latest training log at or before step 4
    assert res.to_dict()["checkpoints"][1]["train_reward"] == 0.9
    assert res.divergence is None  # not asked
    alarm = select(folder, EM, divergence_warn=2).divergence  # reward 0.5 -> 0.9 while the score fell 0.5 -> 0
    assert alarm["steps"] == [2, 4] and "the reward may be gamed" in alarm["message"]
    with pytest.raises(ConfigError, match="divergence_warn: 1 is not a number of evaluations >= 2"):
        select(folder, EM, divergence_warn=1)
    with pytest.raises(ConfigError, match="bootstrap: -1 is not a number of resamples"):
        select(folder, EM, bootstrap=-1)


def test_training_rewards_and_divergence_rules():
    log = [{"step": 5, "reward": 1.0}, {"step": 10, "loss": 0.1}, {"step": 10, "reward": True}]
    assert training_rewards(log, [4, 5, 10]) == {
        5: {"reward": 1.0, "rewards": {}, "step": 5},
        10: {"reward": 1.0, "rewards": {}, "step": 5},
    }
    points = [(1, 0.6, 0.1), (2, 0.5, 0.5), (3, 0.4, 0.9)]
    assert divergence(points, 3)["steps"] == [1, 2, 3]
    assert divergence(points, 4) is None  # not enough evaluations yet
    assert divergence(points, 2, greater_is_better=False) is None  # lower is better: 0.5 -> 0.4 improved
    assert divergence([(1, 0.6, 0.9), (2, 0.5, 0.5)], 2) is None  # training reward fell too
    assert divergence([(1, 0.6, None), (2, 0.5, 0.5), (3, 0.4, 0.7)], 2)["steps"] == [2, 3]


def test_checkpoint_score_round_trips_its_rows():
    cs = CheckpointScore(
        "s",
        "f",
        1,
        None,
        1,
        {"em": 1.0},
        1.0,
        1.0,
        row_scores={"ids": ["0"], "components": {"em": [1.0]}, "combined": [1.0]},
    )
    assert CheckpointScore.from_dict(cs.to_dict("corpus", rows=True)).row_scores == cs.row_scores
    assert "row_scores" not in cs.to_dict("corpus")


def test_best_checkpoint_alarm_and_policy_params_are_checked():
    import rewardkit

    with pytest.raises(ConfigError, match="divergence_stop needs divergence_warn. Hint"):
        rewardkit.get_callback("best_checkpoint", spec=EM, divergence_stop=True)
    with pytest.raises(ConfigError, match="earliest_tied needs the bootstrap intervals. Hint"):
        rewardkit.get_callback("best_checkpoint", spec=EM, policy="earliest_tied", bootstrap=0)
    with pytest.raises(ConfigError, match="divergence_warn"):
        rewardkit.get_callback("best_checkpoint", spec=EM, divergence_warn=1)


def test_run_summary_reads_what_best_checkpoint_recorded(tmp_path):
    from rewardkit.selection.training_reward import run_summary

    assert run_summary(tmp_path / "missing.json") is None
    record = {
        "metric": "eval_score",
        "expression": "em",
        "policy": "best",
        "tie": None,
        "divergence": None,
        "checkpoints": [
            {
                "step": 2,
                "score": 0.5,
                "ci_low": 0.4,
                "ci_high": 0.6,
                "tied_with_best": True,
                "train_reward": 0.7,
                "train_rewards": {"fmt": 0.7},
                "row_scores": {},
            }
        ],
        "best": {"step": 2, "score": 0.5},
    }
    (tmp_path / "scores.json").write_text(json.dumps(record))
    summary = run_summary(tmp_path / "scores.json")
    assert summary["best_step"] == 2 and summary["checkpoints"][0]["train_reward"] == 0.7
    assert "row_scores" not in summary["checkpoints"][0]
