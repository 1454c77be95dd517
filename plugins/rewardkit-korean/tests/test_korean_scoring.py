"""The official-style corpus scorer: EM over all items, reason metrics only where both reasons exist."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import pytest
from korean_testdata import G_SU, P_SU, SAMPLE, load_sample

from rewardkit_korean.scoring import load_items, main, official_scores


def item(id_: str, answer: str, question_type: str = "선택형") -> dict:
    return {"id": id_, "input": {"question_type": question_type, "question": "…"}, "output": {"answer": answer}}


GOLD = [
    item("a", f'"누구나 참여할 수 있음"이 옳다. {G_SU}', "교정형"),
    item("b", "\"왠지 오늘은 기분이 좋다.\"가 옳다. '왠지'는 '왜인지'가 줄어든 말이다."),
    item("c", '"우리는 내일 떠날 거예요."가 옳다.', "교정형"),  # gold without reason
    item("d", "\"며칠 뒤에 다시 만나자.\" 가 옳다. '며칠'로 적는다."),
]
PRED = [
    item("a", f'"누구나 참여할 수 있음"이 옳다. {P_SU}'),  # EM 1, ROUGE-1 7/9 (see test_tokenizer_rouge)
    item("b", '"웬지 오늘은 기분이 좋다."가 옳다.'),  # EM 0, no reason → skipped for reason metrics
    item("c", '"우리는 내일 떠날 거예요."가 옳다. 예요는 이에요의 준말이다.'),  # EM 1, gold has no reason → skipped
    item("d", "\"며칠 뒤에 다시 만나자.\" 가 옳다. '며칠'로 적는다."),  # EM 1, ROUGE-1 1
]


def test_official_rules_by_hand() -> None:
    result = official_scores(PRED, GOLD)
    assert result["exact_match"] == 0.75  # over all 4 items
    assert result["n_reason_items"] == 2  # a and d
    rouge = (Fraction(7, 9) + 1) / 2
    assert result["rouge1"] == pytest.approx(float(rouge))
    assert result["descriptive_avg"] == pytest.approx(float(rouge))
    assert result["final"] == pytest.approx((0.75 + float(rouge)) / 2)
    assert result["reason_metrics"] == ["rouge1"] and result["bertscore"] is None
    by_id = {row["id"]: row for row in result["per_item"]}
    assert by_id["b"]["rouge1"] is None and by_id["c"]["rouge1"] is None
    assert by_id["a"]["rouge1"] == pytest.approx(7 / 9)


def test_bertscore_and_bleurt_callables_see_only_scorable_pairs() -> None:
    seen: list[tuple[list[str], list[str]]] = []

    def fake_bert(candidates: list[str], references: list[str]) -> list[float]:
        seen.append((candidates, references))
        return [0.5 for _ in candidates]

    result = official_scores(PRED, GOLD, bertscore=fake_bert, bleurt=lambda c, r: [0.2] * len(c))
    assert seen == [([P_SU, "'며칠'로 적는다."], [G_SU, "'며칠'로 적는다."])]
    rouge = (7 / 9 + 1) / 2
    assert result["bertscore"] == 0.5 and result["bleurt"] == 0.2
    assert result["reason_metrics"] == ["rouge1", "bertscore", "bleurt"]
    assert result["final"] == pytest.approx((0.75 + (rouge + 0.5 + 0.2) / 3) / 2)


def test_bad_scorer_length() -> None:
    with pytest.raises(ValueError, match="bertscore returned 1 scores for 2 pairs"):
        official_scores(PRED, GOLD, bertscore=lambda c, r: [0.1])


def test_perfect_submission_of_the_sample() -> None:
    result = official_scores(SAMPLE, SAMPLE)
    assert result["final"] == 1.0 and result["n_items"] == 12 and result["n_reason_items"] == 11


def test_no_reasons_at_all() -> None:
    answers_only = [item(g["id"], g["output"]["answer"].split(". ")[0]) for g in GOLD]
    result = official_scores(answers_only, GOLD)
    assert result["n_reason_items"] == 0 and result["rouge1"] is None
    assert result["final"] == result["exact_match"] / 2


def test_missing_and_extra_ids_are_named() -> None:
    pred = [p for p in PRED if p["id"] != "b"] + [item("zz", '"x"가 옳다. y')]
    with pytest.raises(ValueError, match=r"missing from predictions \['b'\], extra in predictions \['zz'\]"):
        official_scores(pred, GOLD)


def test_duplicate_and_malformed_items() -> None:
    with pytest.raises(ValueError, match="duplicate id 'a'"):
        official_scores(PRED + [PRED[0]], GOLD)
    with pytest.raises(ValueError, match=r"item id='b' of predictions has no string 'output.answer'"):
        official_scores([PRED[0], {"id": "b", "output": {"text": "x"}}, *PRED[2:]], GOLD)
    with pytest.raises(ValueError, match="item 0 of labels has no 'id'"):
        official_scores(PRED, [{"output": {"answer": "x"}}])


def test_reads_json_and_jsonl_files(tmp_path) -> None:
    pred_path, gold_path = tmp_path / "pred.json", tmp_path / "gold.jsonl"
    pred_path.write_text(json.dumps(PRED, ensure_ascii=False), encoding="utf-8")
    gold_path.write_text("\n".join(json.dumps(g, ensure_ascii=False) for g in GOLD) + "\n", encoding="utf-8")
    assert official_scores(pred_path, str(gold_path))["final"] == official_scores(PRED, GOLD)["final"]
    assert len(load_items(SAMPLE)) == len(load_sample()) == 12
    with pytest.raises(FileNotFoundError, match="no file at"):
        official_scores(tmp_path / "nope.json", gold_path)
    (tmp_path / "broken.json").write_text("[{", encoding="utf-8")
    with pytest.raises(ValueError, match="is not valid JSON"):
        official_scores(tmp_path / "broken.json", gold_path)


def test_cli(tmp_path, capsys) -> None:
    assert main([str(SAMPLE), str(SAMPLE)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["final"] == 1.0 and "per_item" not in printed


def test_item_files_are_read_bounded_like_every_rewardkit_input(tmp_path, monkeypatch):
    """The official scorer reads through rewardkit's input reader: a file over REWARDKIT_MAX_INPUT_BYTES is one
    error naming the limit (never read whole), and a non-UTF-8 file names its line."""
    big = tmp_path / "pred.jsonl"
    big.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("REWARDKIT_MAX_INPUT_BYTES", "100")
    with pytest.raises(ValueError, match="over the input limit of 100 bytes"):
        load_items(big)
    monkeypatch.delenv("REWARDKIT_MAX_INPUT_BYTES")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'[\n{"id": "\xff"}]')
    with pytest.raises(ValueError, match=r"bad.json:2: not valid UTF-8"):
        load_items(bad)


def test_score_command_with_bertscore_prints_no_bars_and_scores_in_the_unit_interval(request, tmp_path):
    """Issue 29: transformers' "Loading weights" bar reached stderr, and identical reasons scored
    bertscore 1.0000000335867443 (float32 rounding in bert-score): one stderr line, every score in [0, 1]."""
    import subprocess
    import sys

    tiny_korean_bert = request.getfixturevalue("tiny_korean_bert")
    sample = Path(__file__).resolve().parents[1] / "src" / "rewardkit_korean" / "data" / "sample.jsonl"
    args = [str(sample), str(sample), "--bertscore-model", str(tiny_korean_bert), "--bertscore-layer", "2"]
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")}
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit_korean.scoring", *args, "--per-item"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "\r" not in proc.stderr and "Loading" not in proc.stderr, proc.stderr
    result = json.loads(proc.stdout)
    scores = [item["bertscore"] for item in result["per_item"] if item["bertscore"] is not None]
    assert scores and all(0.0 <= s <= 1.0 for s in scores), scores  # the gold against itself: never 1 + float error
    assert result["bertscore"] == pytest.approx(1.0, abs=1e-6) and result["bertscore"] <= 1.0


def test_a_400k_character_reason_is_bounded_before_mecab_and_said():
    """Mecab's time grows with the square of one call's length (a 12-item file of 400k-character reasons did not
    finish in 300 s): only the first MAX_ANALYSED_CHARS characters, cut at a space, reach it, with a warning."""
    import time

    from rewardkit_korean.tokenizer import MAX_ANALYSED_CHARS, KoreanMorphemeTokenizer

    reason = "'왠지'는 '왜인지'가 줄어든 말이다. " * (400_000 // 20)
    start = time.perf_counter()
    with pytest.warns(UserWarning, match=f"longer than {MAX_ANALYSED_CHARS} characters is cut"):
        tokens = KoreanMorphemeTokenizer().tokenize(reason)
        score = official_scores([item("x", f'"가"가 옳다. {reason}')], [item("x", f'"가"가 옳다. {reason}')])
    assert time.perf_counter() - start < 20  # unbounded: minutes
    assert score["rouge1"] == 1.0 and tokens[:3] == ["왠지", "는", "왜"]
    short = "'왠지'는 '왜인지'가 줄어든 말이다."
    assert KoreanMorphemeTokenizer().tokenize(short) == ["왠지", "는", "왜", "인지", "가", "줄어든", "말", "이", "다"]


def test_cli_stdout_is_the_json_alone_when_a_scorer_prints(monkeypatch, capsys) -> None:
    """bert_score and other scorer libraries print() warnings: they go to stderr, and stdout still parses."""
    import rewardkit_korean.scoring as scoring

    real = scoring.official_scores

    def printing(*args, **kwargs):
        print("Warning: Empty candidate sentence detected; setting raw BERTscores to 0.")  # bert_score's wording
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring, "official_scores", printing)
    assert main([str(SAMPLE), str(SAMPLE)]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["final"] == 1.0 and "Empty candidate sentence" in out.err


def test_cli_stdout_is_the_json_alone_when_a_scorer_writes_below_python(monkeypatch, capfd) -> None:
    """Mecab and other C code write to file descriptor 1, not to sys.stdout; so does a child process: while the
    scorers run fd 1 is stderr, and stdout is still the JSON alone."""
    import os
    import subprocess
    import sys

    import rewardkit_korean.scoring as scoring

    real = scoring.official_scores

    def writing(*args, **kwargs):
        os.write(1, b"written to fd 1 by a C library\n")
        subprocess.run([sys.executable, "-c", "print('printed by a child process')"], check=True)
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring, "official_scores", writing)
    assert main([str(SAMPLE), str(SAMPLE)]) == 0
    out = capfd.readouterr()
    assert json.loads(out.out)["final"] == 1.0
    assert "written to fd 1 by a C library" in out.err and "printed by a child process" in out.err
