"""The server's scorer: model components merge concurrent requests into one forward; scores as compose(SPEC)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from rewardkit import compose
from rewardkit.serve.protocol import Limits, RequestError, ScoreRequest, reward_request
from rewardkit.serve.scorer import Scorer


@pytest.fixture(scope="module")
def bert_spec(tiny_bert_dir) -> dict:
    return {
        "rewards": {"bs": {"use": "bertscore", "model_type": str(tiny_bert_dir), "num_layers": 2}, "em": "exact_match"},
        "combine": "bs + em",
    }


def test_concurrent_requests_share_one_forward(bert_spec):
    scorer = Scorer(compose(bert_spec), max_wait=0.3)
    rows = [(f"the answer is {i}", f"answer {i}") for i in range(8)]
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(lambda r: scorer.score(ScoreRequest([r[0]], columns={"answer": [r[1]]})).combined, rows)
            )
        batcher = scorer.batchers["bs"]
        assert "em" not in scorer.batchers  # exact match gains nothing from merging
        assert batcher.calls < 8 and batcher.merged >= 2
    finally:
        scorer.close()
    local = compose(bert_spec)
    for (completion, gold), got in zip(rows, results):
        # merged rows share padded batches: equal up to float rounding of the forward pass
        assert got[0] == pytest.approx(local(completions=[completion], answer=[gold])[0], abs=1e-5)


def test_a_request_alone_scores_bit_for_bit(bert_spec):
    scorer = Scorer(compose(bert_spec))
    completions, golds = ["a cat sat", "", "the dog"], ["a cat sat down", "x", None]
    try:
        scored = scorer.score(ScoreRequest(completions, columns={"answer": golds}))
    finally:
        scorer.close()
    assert scored.combined == compose(bert_spec)(completions=completions, answer=golds)
    assert scored.reasons["bs"] == [None, None, "no reference"]


def test_idf_from_the_call_never_merges(tiny_bert_dir):
    spec = {"bs": {"use": "bertscore", "model_type": str(tiny_bert_dir), "num_layers": 2, "idf": True}}
    scorer = Scorer(compose(spec))
    assert scorer.batchers == {}  # its weights come from each call's golds: another request would change them
    scorer.close()


def test_labels_cannot_fill_two_reference_columns():
    scorer = Scorer(compose({"a": {"use": "exact_match"}, "b": {"use": "rouge1", "reference": "gold"}}))
    assert scorer.reference_columns == ["answer", "gold"]
    body = {"query": ["Q a"], "prompts": ["Q "], "labels": ["a"]}
    with pytest.raises(RequestError, match="2 reference columns") as caught:
        reward_request(body, Limits(), scorer.reference_columns)
    assert caught.value.field == "labels" and caught.value.status == 422
    scorer.close()


def test_workers_spread_cpu_components_not_models(bert_spec):
    from rewardkit.serve.scorer import load_scorer

    spec = {"rewards": {"bs": bert_spec["rewards"]["bs"], "r1": {"use": "rouge1"}}, "combine": "bs + r1"}
    scorer = load_scorer(spec, workers=2)
    try:
        workers = {alias: reward.params.workers for alias, reward in scorer.composed.components.items()}
        assert workers == {"bs": None, "r1": 2}  # the model stays loaded once, in the server
        completions, golds = ["a cat sat", "the dog ran far", "x"], ["a cat sat down", "the dog", "y"]
        got = scorer.score(ScoreRequest(completions, columns={"answer": golds})).combined
    finally:
        scorer.close()
    assert got == compose(spec)(completions=completions, answer=golds)
