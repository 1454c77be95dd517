"""The installed plugin as rewardkit sees it: entry-point discovery, registered names, rewards and presets."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from importlib import metadata

import pytest
from korean_testdata import G_SU, G_SU_M, P_SU, load_predictions, load_sample

rewardkit = pytest.importorskip("rewardkit")
DIST = "rewardkit-korean"


def _run(code: str, **env: str) -> str:
    """Run Python in a fresh interpreter (plugin loading is process-global) and return its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_entry_point_is_installed() -> None:
    eps = [ep for ep in metadata.entry_points(group="rewardkit") if ep.name == "korean"]
    assert len(eps) == 1, "pip install ./plugins/rewardkit-korean first"
    assert eps[0].value == "rewardkit_korean.plugin" and eps[0].dist.name == DIST


def test_rewardkit_list_json_shows_the_plugin() -> None:
    # A fresh process that never imports rewardkit_korean itself: only the entry point can bring it in.
    out = _run("import sys; from rewardkit.cli.main import main; sys.argv = ['rewardkit', 'list', '--json']; main()")
    data = json.loads(out)
    mine = {
        kind: {e["name"]: e for e in data[kind] if e["source"] == DIST}
        for kind in ("rewards", "views", "tokenizers", "presets")
    }
    assert set(mine["rewards"]) == {"korean_qa_exact_match", "korean_qa_format"}
    assert set(mine["views"]) == {"answer", "reason"}
    assert set(mine["tokenizers"]) == {"korean_morpheme"}
    assert set(mine["presets"]) == {"official", "official_full", "official_strict", "blog"}
    assert mine["rewards"]["korean_qa_exact_match"]["version"] == metadata.version(DIST)
    assert mine["rewards"]["korean_qa_exact_match"]["params"]["properties"]["mode"]["enum"] == ["official", "lenient"]
    assert not [f for f in data["failed_plugins"] if f["name"] == DIST]


def test_list_rewards_in_process() -> None:
    rows = {r["name"]: r for r in rewardkit.list_rewards() if r["source"] == DIST}
    assert rows["korean_qa_format"]["summary"].startswith("1.0 when the completion is a well-formed")
    assert rows["korean_qa_exact_match"]["qualified_name"] == f"{DIST}:korean_qa_exact_match"


def test_plugin_import_is_light_and_can_be_disabled() -> None:
    out = _run(
        "import sys, json, rewardkit_korean.plugin; "
        "print(json.dumps([m for m in ('torch', 'transformers', 'bert_score', 'mecab') if m in sys.modules]))"
    )
    assert json.loads(out) == []
    out = _run(
        "import json, rewardkit; print(json.dumps([r['name'] for r in rewardkit.list_rewards()]))",
        REWARDKIT_LOAD_PLUGINS="",
    )
    assert "korean_qa_exact_match" not in json.loads(out)


GOLD = '"누구나 참여할 수 있음"이 옳다. ' + G_SU


def test_exact_match_reward() -> None:
    em = rewardkit.get_reward("korean_qa_exact_match")
    completions = [
        '"누구나 참여할 수 있음"이 옳다. 다른 이유를 써도 EM에는 상관없다.',
        [{"role": "assistant", "content": "'누구나 참여할 수 있음'이 옳다."}],  # chat format, single quotes
        "“누구나 참여할 수 있음”이 옳다. 이유",
        "누구나 참여할수 있음",
    ]
    assert em(prompts=["q"] * 4, completions=completions, answer=[GOLD] * 4) == [1.0, 1.0, 0.0, 0.0]
    lenient = pickle.loads(pickle.dumps(rewardkit.get_reward("korean_qa_exact_match", mode="lenient")))
    assert lenient(completions=completions, answer=[GOLD] * 4) == [1.0, 1.0, 1.0, 0.0]
    assert em.__name__ == "korean_qa_exact_match"
    # a list of golds per row, and '#' alternatives inside a gold answer part
    assert em(completions=['"B"가 옳다. x'], answer=[['"A"가 옳다. y', '"B"가 옳다. z']]) == [1.0]
    assert em(completions=['"B"가 옳다. x'], answer=['"A"이 옳다#"B"가 옳다. z']) == [1.0]


def test_exact_match_errors_name_the_fix() -> None:
    with pytest.raises(rewardkit.ConfigError, match="'official' or 'lenient'"):
        rewardkit.get_reward("korean_qa_exact_match", mode="strict")
    em = rewardkit.get_reward("korean_qa_exact_match")
    with pytest.raises(rewardkit.DataError, match="needs the reference column 'answer'"):
        em(completions=["x"], solution=["y"])


def test_format_reward(sample_items: list[dict]) -> None:
    fmt = pickle.loads(pickle.dumps(rewardkit.get_reward("korean_qa_format")))
    golds = [item["output"]["answer"] for item in sample_items]
    assert fmt(completions=golds) == [0.0 if item["id"] == "9" else 1.0 for item in sample_items]
    assert fmt(completions=["그냥 답", '"A"가 옳다.', '"A 가 옳다. x']) == [0.0, 0.0, 0.0]


def test_views_and_tokenizer_through_the_registry() -> None:
    from rewardkit import get_view as resolve_view

    assert resolve_view("answer")(GOLD) == '"누구나 참여할 수 있음"이 옳다'
    assert resolve_view("reason")(GOLD) == G_SU
    assert resolve_view("reason")('"A"가 옳다.') is None
    with pytest.raises(rewardkit.ConfigError, match="marker: unknown key"):
        resolve_view({"view": "reason", "marker": "x"})
    tok = pickle.loads(pickle.dumps(rewardkit.get_tokenizer("korean_morpheme")))
    assert tok.tokenize(G_SU) == G_SU_M
    # a core reward can use the views too
    em = rewardkit.get_reward(
        "exact_match", completion_view="answer", reference_view="answer", remove_quotes=True, alternatives="#"
    )
    assert em(completions=["'누구나 참여할 수 있음'이 옳다. 아무 이유"], answer=[GOLD]) == [1.0]


def test_presets_are_registered_files() -> None:
    from rewardkit import get_preset as load_preset

    official, blog = load_preset("official"), load_preset("blog")
    assert official["combine"] == "(em + (rouge1 + bertscore) / 2) / 2"
    assert blog["combine"] == "(bertscore + em + (format + 3*rouge1)/2)/3"
    for spec in (official, blog):
        assert spec["rewards"]["rouge1"]["tokenizer"] == "korean_morpheme"
        assert spec["rewards"]["rouge1"]["completion_view"] == "reason"
        assert spec["rewards"]["bertscore"]["model_type"] == "bert-base-multilingual-cased"
        assert spec["rewards"]["bertscore"]["num_layers"] == 9
        assert spec["rewards"]["em"]["completion_view"] == "answer"


def test_core_rouge1_with_korean_morpheme_is_the_official_rouge1() -> None:
    from rewardkit_korean.scoring import rouge1_f

    rouge = rewardkit.get_reward(
        "rouge1",
        tokenizer="korean_morpheme",
        completion_view="reason",
        reference_view="reason",
        reference="answer",
        missing="none",
    )
    completions = ['"누구나 참여할 수 있음"이 옳다. ' + P_SU, GOLD, '"A"가 옳다.']
    scores = rouge(completions=completions, answer=[GOLD] * 3)
    assert scores[0] == pytest.approx(7 / 9) and scores[1] == pytest.approx(1.0) and scores[2] is None
    gold = [i["output"]["answer"] for i in load_sample()]
    preds = [i["output"]["answer"] for i in load_predictions()]
    from rewardkit_korean.split import split_answer_reason as split

    expected = [
        rouge1_f(split(p)[1], split(g)[1]) if split(p)[1] and split(g)[1] else None for p, g in zip(preds, gold)
    ]
    assert rouge(completions=preds, answer=gold) == pytest.approx(expected)


def _with_tiny_bert(spec: dict, path) -> dict:
    spec = json.loads(json.dumps(spec))
    spec["rewards"]["bertscore"].update(model_type=str(path), num_layers=2)
    return spec


def test_official_preset_corpus_equals_the_reference_scorer(request: pytest.FixtureRequest) -> None:
    tiny_korean_bert = request.getfixturevalue("tiny_korean_bert")  # after the checks: building it imports torch
    from rewardkit import compose
    from rewardkit import get_preset as load_preset
    from rewardkit.composition.scoring import score_rows
    from rewardkit_korean.scoring import BERTScoreF1, official_scores

    gold, preds = load_sample(), load_predictions()
    composed = compose(_with_tiny_bert(load_preset("official"), tiny_korean_bert))
    rows = [{"completion": p["output"]["answer"], "answer": g["output"]["answer"]} for p, g in zip(preds, gold)]
    scores = score_rows(composed, rows)
    reference = official_scores(preds, gold, bertscore=BERTScoreF1(str(tiny_korean_bert), num_layers=2))
    assert scores.corpus(composed) == pytest.approx(reference["final"], abs=1e-6)
    for i, item in enumerate(reference["per_item"]):
        assert scores.components["em"][i] == item["exact_match"]
        assert scores.components["rouge1"][i] == pytest.approx(item["rouge1"])
        assert scores.components["bertscore"][i] == pytest.approx(item["bertscore"], abs=1e-5)
        reason = 0.0 if item["rouge1"] is None else (item["rouge1"] + item["bertscore"]) / 2
        assert scores.combined[i] == pytest.approx((item["exact_match"] + reason) / 2, abs=1e-6)


def test_blog_preset_on_a_perfect_and_a_malformed_completion(request: pytest.FixtureRequest) -> None:
    tiny_korean_bert = request.getfixturevalue("tiny_korean_bert")
    from rewardkit import compose
    from rewardkit import get_preset as load_preset

    blog = compose(_with_tiny_bert(load_preset("blog"), tiny_korean_bert))
    perfect, no_reason = blog(completions=[GOLD, '"누구나 참여할 수 있음"이 옳다.'], answer=[GOLD, GOLD])
    assert perfect == pytest.approx(4 / 3, abs=1e-5)  # (1 + 1 + (1 + 3)/2) / 3: the formula tops out at 4/3
    assert no_reason == pytest.approx((0 + 1 + (0 + 0) / 2) / 3)
    pickle.loads(pickle.dumps(blog))
