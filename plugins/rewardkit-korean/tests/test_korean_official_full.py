"""`official_full` (n = 3, the exact official formula) and `rewardkit-korean-score --bleurt-model`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from korean_testdata import SAMPLE, load_predictions, load_sample

rewardkit = pytest.importorskip("rewardkit")
from rewardkit_korean.scoring import BERTScoreF1, BLEURTScores, main, official_scores  # noqa: E402

BLEURT_TINY = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "bleurt_tiny"
try:
    import sentencepiece  # noqa: F401

    HAVE_SPM = True
except ImportError:
    HAVE_SPM = False
needs_bleurt = pytest.mark.skipif(
    not (HAVE_SPM and BLEURT_TINY.is_dir()),
    reason="needs sentencepiece ('rewardkit[bleurt]') and tests/fixtures/bleurt_tiny",
)


def test_official_full_is_the_exact_formula_beside_official() -> None:
    full, official = rewardkit.get_preset("official_full"), rewardkit.get_preset("official")
    assert full["combine"] == "(em + (rouge1 + bertscore + bleurt) / 3) / 2"
    assert official["combine"] == "(em + (rouge1 + bertscore) / 2) / 2"
    assert full["rewards"]["bleurt"] == {
        "use": "bleurt",
        "model": "lucadiliello/BLEURT-20",
        "completion_view": "reason",
        "reference_view": "reason",
        "reference": "answer",
        "missing": "none",
    }
    assert {k: v for k, v in full["rewards"].items() if k != "bleurt"} == official["rewards"]


def test_score_always_says_which_reason_metrics_it_used(capsys) -> None:
    assert main([str(SAMPLE), str(SAMPLE)]) == 0
    err = capsys.readouterr().err
    assert "reason metrics used: rouge1; left out: bertscore (--bertscore-model), bleurt (--bleurt-model)" in err
    assert "NOT the official score (n = 3)" in err


def test_score_with_a_bad_bleurt_model_is_one_line_exit_2(tmp_path, capsys) -> None:
    assert main([str(SAMPLE), str(SAMPLE), "--bleurt-model", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("rewardkit-korean-score: error: bleurt: model") and "Hint:" in err


@needs_bleurt
def test_score_with_bleurt(capsys) -> None:
    assert main([str(SAMPLE), str(SAMPLE), "--bleurt-model", str(BLEURT_TINY)]) == 0
    out = capsys.readouterr()
    assert "reason metrics used: rouge1, bleurt; left out: bertscore (--bertscore-model)" in out.err
    assert json.loads(out.out)["reason_metrics"] == ["rouge1", "bleurt"]


@needs_bleurt
def test_official_full_corpus_equals_the_reference_scorer(request: pytest.FixtureRequest) -> None:
    tiny_korean_bert = request.getfixturevalue("tiny_korean_bert")
    from rewardkit.composition.scoring import score_rows

    spec = json.loads(json.dumps(rewardkit.get_preset("official_full")))
    spec["rewards"]["bertscore"].update(model_type=str(tiny_korean_bert), num_layers=2)
    spec["rewards"]["bleurt"]["model"] = str(BLEURT_TINY)
    composed = rewardkit.compose(spec)
    gold, preds = load_sample(), load_predictions()
    rows = [{"completion": p["output"]["answer"], "answer": g["output"]["answer"]} for p, g in zip(preds, gold)]
    scores = score_rows(composed, rows)
    reference = official_scores(
        preds, gold, bertscore=BERTScoreF1(str(tiny_korean_bert), num_layers=2), bleurt=BLEURTScores(str(BLEURT_TINY))
    )
    assert reference["reason_metrics"] == ["rouge1", "bertscore", "bleurt"]
    assert scores.corpus(composed) == pytest.approx(reference["final"], abs=1e-6)
    for i, item in enumerate(reference["per_item"]):
        assert (scores.components["bleurt"][i] is None) == (item["bleurt"] is None)
        if item["bleurt"] is not None:
            assert scores.components["bleurt"][i] == pytest.approx(item["bleurt"], abs=1e-5)


@needs_bleurt
def test_official_full_runs_offline_end_to_end_with_tiny_models(tmp_path, monkeypatch, capsys) -> None:
    """`rewardkit tiny DIR --bleurt` + `--bert` make `official_full` run with no hub: the missing BLEURT is one
    line naming `--set bleurt.model=DIR` and the `--bleurt` tiny, then the tiny models score as the reference."""
    import os
    import subprocess
    import sys

    from korean_testdata import load_predictions

    from rewardkit.cli.tiny_command import make

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    bert = make(tmp_path / "bert", [SAMPLE], bert=True, hidden=32, layers=2).path
    bleurt = make(tmp_path / "bleurt", [SAMPLE], bleurt=True, hidden=32, layers=2).path
    gold, preds = load_sample(), load_predictions()
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"completion": p["output"]["answer"], "answer": g["output"]["answer"]}, ensure_ascii=False)
            + "\n"
            for p, g in zip(preds, gold)
        ),
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "rewardkit", "score", "official_full", "-i", str(rows), "--json"]
    sets = ["--set", f"bertscore.model_type={bert}", "--set", "bertscore.num_layers=2"]
    missing = subprocess.run(command + sets, capture_output=True, text=True, timeout=300, env=env)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "rewards.bleurt.model 'lucadiliello/BLEURT-20'" in missing.stderr
    assert "--set bleurt.model=DIR (`rewardkit tiny DIR --bleurt`" in missing.stderr and "--bert`" not in missing.stderr
    # scored in-process: a second subprocess would spend most of its time importing torch again
    from rewardkit.cli.main import main

    monkeypatch.setattr(sys, "argv", ["rewardkit", *command[3:], *sets, "--set", f"bleurt.model={bleurt}"])
    with pytest.raises(SystemExit) as exited:
        main()
    done = capsys.readouterr()
    assert exited.value.code == 0, done.err
    corpus = json.loads(done.out)["corpus"]
    reference = official_scores(
        preds, gold, bertscore=BERTScoreF1(bert, num_layers=2), bleurt=BLEURTScores(bleurt)
    )  # the official rule with the same tiny models
    assert reference["reason_metrics"] == ["rouge1", "bertscore", "bleurt"] and reference["bleurt"] is not None
    assert corpus == pytest.approx(reference["final"], abs=1e-6)
