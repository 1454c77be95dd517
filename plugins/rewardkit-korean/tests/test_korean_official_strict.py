"""Reason coverage and `official_strict`: the official corpus rule averages the reason metrics only over items
with a reason, so one copied reason plus correct answers scores 1.0; `official_strict` scores a missing reason 0."""

from __future__ import annotations

import json

import pytest
from korean_testdata import load_sample

rewardkit = pytest.importorskip("rewardkit")
from rewardkit_korean.scoring import BERTScoreF1, official_scores  # noqa: E402
from rewardkit_korean.split import split_answer_reason  # noqa: E402


def _gamed(gold: list[dict]) -> list[dict]:
    """Every answer right, a reason (copied from the gold) on the first item only."""
    out = []
    for i, item in enumerate(gold):
        answer, _ = split_answer_reason(item["output"]["answer"])
        text = item["output"]["answer"] if i == 0 else answer
        out.append({"id": item["id"], "output": {"answer": text}})
    return out


def _honest(gold: list[dict]) -> list[dict]:
    """Every answer right, a short weak reason on every item."""
    return [
        {"id": g["id"], "output": {"answer": split_answer_reason(g["output"]["answer"])[0] + " 맞춤법에 맞다."}}
        for g in gold
    ]


def _scores(preset: str, bert: str, preds: list[dict], gold: list[dict]):
    from rewardkit.composition.scoring import score_rows

    composed = rewardkit.compose({"preset": preset, "set": {"bertscore.model_type": bert, "bertscore.num_layers": 2}})
    rows = [{"completion": p["output"]["answer"], "answer": g["output"]["answer"]} for p, g in zip(preds, gold)]
    return composed, score_rows(composed, rows)


def test_one_copied_reason_scores_1_under_official_but_not_under_official_strict(tiny_korean_bert) -> None:
    gold = load_sample()
    gamed, honest = _gamed(gold), _honest(gold)
    composed, official = _scores("official", str(tiny_korean_bert), gamed, gold)
    # the exact official rule, as the reference scorer computes it: a perfect score from one reason
    reference = official_scores(gamed, gold, bertscore=BERTScoreF1(str(tiny_korean_bert), num_layers=2))
    assert reference["final"] == pytest.approx(1.0, abs=1e-6) and reference["n_reason_items"] == 1
    assert official.corpus(composed) == pytest.approx(reference["final"], abs=1e-6)
    n = sum(bool(split_answer_reason(g["output"]["answer"])[1]) for g in gold)  # golds with a reason (11 of 12)
    assert official.coverage_lines() == [
        f"reason coverage: 1/{n} rows (rouge1, bertscore average over these rows only)"
    ]

    strict_composed, strict = _scores("official_strict", str(tiny_korean_bert), gamed, gold)
    assert strict.corpus(strict_composed) == pytest.approx((1 + (1 / n + 1 / n) / 2) / 2, abs=1e-6)
    assert strict.coverage_lines() == [f"reason coverage: 1/{n} rows"]  # missing scores 0: every row counts
    # honest weak reasons on every item now beat the gamed submission; under `official` they lose to it
    h_composed, h_strict = _scores("official_strict", str(tiny_korean_bert), honest, gold)
    assert h_strict.corpus(h_composed) > strict.corpus(strict_composed)
    o_composed, h_official = _scores("official", str(tiny_korean_bert), honest, gold)
    assert h_official.corpus(o_composed) < official.corpus(composed)
    # per item (what a trainer sees) the two presets agree
    assert strict.combined == pytest.approx(official.combined)


def test_official_strict_is_official_with_missing_zero() -> None:
    strict, official = rewardkit.get_preset("official_strict"), rewardkit.get_preset("official")
    assert strict["combine"] == official["combine"] and strict["none"] == official["none"]
    for alias, entry in official["rewards"].items():
        changed = {k for k in entry if strict["rewards"][alias][k] != entry[k]}
        assert changed == ({"missing"} if alias != "em" else set())
        assert strict["rewards"][alias].get("missing", "zero") == "zero"


def test_score_prints_the_reason_coverage(tmp_path, tiny_korean_bert, monkeypatch, capsys) -> None:
    import subprocess
    import sys

    from rewardkit.cli.main import main

    gold = load_sample()
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"completion": p["output"]["answer"], "answer": g["output"]["answer"]}, ensure_ascii=False)
            + "\n"
            for p, g in zip(_gamed(gold), gold)
        ),
        encoding="utf-8",
    )
    base = [sys.executable, "-m", "rewardkit", "score", "official", "-i", str(rows)]
    sets = ["--set", f"bertscore.model_type={tiny_korean_bert}", "--set", "bertscore.num_layers=2"]
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1"}
    text = subprocess.run(base + sets, capture_output=True, text=True, timeout=300, env=env)
    assert text.returncode == 0, text.stderr
    assert "reason coverage: 1/11 rows (rouge1, bertscore average over these rows only)" in text.stdout
    assert "answer coverage" not in text.stdout  # the answer view found every row and nothing averages over it
    # --json in this process: a second subprocess would spend most of its time importing torch again
    monkeypatch.setattr(sys, "argv", ["rewardkit", *base[3:], *sets, "--json"])
    with pytest.raises(SystemExit) as done:
        main()
    data = capsys.readouterr()
    assert done.value.code == 0, data.err
    coverage = json.loads(data.out)["coverage"]
    assert coverage["reason"]["found"] == 1 and coverage["reason"]["rows"] == 11  # one gold has no reason
