"""The bleurt reward: parity with bleurt-pytorch (transformers 4.x) on a tiny checkpoint it made, and the contract.

tests/fixtures/bleurt_tiny was written by tests/scripts/make_bleurt_fixture.py in a venv with bleurt-pytorch
0.0.1 and transformers 4.57: a tiny SentencePiece vocabulary trained offline, a random BLEURT-20-shaped
checkpoint (embedding projection 16 -> 32), and the scores bleurt-pytorch gives fixed pairs.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest

from rewardkit import ConfigError, compose, get_reward
from rewardkit.rewards import bleurt_rewards
from rewardkit.rewards.models import MODELS
from tests.conftest import TESTS

try:
    import sentencepiece  # noqa: F401  the `bleurt` extra (part of `test`)

    HAVE_SPM = True
except ImportError:
    HAVE_SPM = False
needs_spm = pytest.mark.skipif(not HAVE_SPM, reason="sentencepiece is not installed: pip install 'rewardkit[bleurt]'")

FIXTURE = TESTS / "fixtures" / "bleurt_tiny"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text(encoding="utf-8"))["pairs"]


def _reward(**params):
    return get_reward("bleurt", model=str(FIXTURE), **params)


@needs_spm
def test_parity_with_bleurt_pytorch_within_1e_5():
    reward = _reward()
    tokenizer, _ = reward.model()
    for pair in EXPECTED:  # the same token ids first: a tokenizer mismatch would show here, not as a score
        ids, _ = tokenizer.pair(tokenizer.encode(pair["reference"]), tokenizer.encode(pair["candidate"]), 512)
        assert ids == pair["input_ids"]
    got = reward.pair_scores([(p["reference"], p["candidate"]) for p in EXPECTED])
    worst = max(abs(got[(p["reference"], p["candidate"])] - p["score"]) for p in EXPECTED)
    assert worst < 1e-5
    spread = max(p["score"] for p in EXPECTED) - min(p["score"] for p in EXPECTED)
    assert spread > 0.1  # the fixture's scores differ from pair to pair: parity is not trivially met


@needs_spm
def test_reward_contract_dedup_alternatives_views_and_missing():
    reward = _reward(alternatives="#", completion_view={"view": "after", "marker": "A:"}, missing="none")
    by_pair = {(p["reference"], p["candidate"]): p["score"] for p in EXPECTED}
    ref, cand = EXPECTED[1]["reference"], EXPECTED[1]["candidate"]
    other = EXPECTED[2]["reference"]
    out = reward(
        completions=[f"A: {cand}", f"A: {cand}", "no marker", "A: x", f"A: {cand}"],
        answer=[ref, ref, ref, "  ", f"{other}#{ref}"],
    )
    assert out[0] == out[1] == pytest.approx(by_pair[(ref, cand)], abs=1e-5)
    assert out[2] is None and out[3] is None  # view finds nothing (missing: none); empty reference
    assert out[4] == pytest.approx(max(by_pair[(ref, cand)], reward.pair_scores([(other, cand)])[(other, cand)]))
    rows = []
    _, net = reward.model()
    hook = net.register_forward_pre_hook(
        lambda module, args, kwargs: rows.append(len(kwargs["input_ids"])), with_kwargs=True
    )
    try:  # G = 8 repeats of one pair plus one other pair: two rows go through the model
        reward(completions=[f"A: {cand}"] * 8 + [f"A: {ref}"], answer=[ref] * 9)
    finally:
        hook.remove()
    assert sum(rows) == 2
    assert pickle.loads(pickle.dumps(_reward()))(completions=[cand], answer=[ref]) == [
        pytest.approx(by_pair[(ref, cand)], abs=1e-5)
    ]


@needs_spm
def test_one_load_per_process_and_batching_does_not_change_scores():
    bleurt_rewards.clear_model_cache()
    a, b = _reward(batch_size=1), _reward(batch_size=64)
    pairs = [(p["reference"], p["candidate"]) for p in EXPECTED]
    one, many = a.pair_scores(pairs), b.pair_scores(pairs)
    assert a.model() is b.model() and len(MODELS.keys("bleurt")) == 1
    assert max(abs(one[k] - many[k]) for k in pairs) < 1e-5


def test_bad_models_are_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="bleurt: model .* is not a folder.*Hint"):
        _reward_at(tmp_path / "nope")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConfigError, match="model_type 'bert', not a one-output bleurt-pytorch checkpoint"):
        _reward_at(tmp_path / "bert")


def _reward_at(path):
    return get_reward("bleurt", model=str(path))(completions=["x"], answer=["y"])


def test_import_is_light():
    import subprocess

    code = (
        "import sys, rewardkit.rewards.bleurt_rewards; "
        "print(sorted(m for m in ('torch', 'transformers', 'sentencepiece') if m in sys.modules))"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    )


@needs_spm
def test_it_composes():
    composed = compose(
        {
            "rewards": {"b": {"use": "bleurt", "model": str(FIXTURE)}, "em": {"use": "exact_match"}},
            "combine": "(b + em) / 2",
        }
    )
    ref, cand = EXPECTED[0]["reference"], EXPECTED[0]["candidate"]
    assert composed(completions=[cand], answer=[ref]) == [pytest.approx((EXPECTED[0]["score"] + 1.0) / 2, abs=1e-5)]


def test_preflight_finds_a_missing_bleurt_model_fast(tmp_path, monkeypatch):
    from rewardkit.models import entry_models, problem

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found = entry_models("bl", {"use": "bleurt", "model": "rewardkit-tests/no-bleurt"})
    problems = [problem(m.value, m.ref.kind) for m in found]  # offline: answered from the cache, no hub wait
    assert problems and "is neither a local folder nor in the Hugging Face cache (HF_HUB_OFFLINE=1" in problems[0]
    # The ModelRef marker finds the field's default model too (preflight and --smoke see a bare `use: bleurt`).
    assert [(m.field, m.value, m.ref.kind, m.ref.tiny) for m in entry_models("bl", {"use": "bleurt"})] == [
        ("model", "lucadiliello/BLEURT-20", "model", "bleurt")
    ]


@needs_spm
def test_smoke_swaps_a_hub_bleurt_for_a_tiny_local_one(tmp_path, monkeypatch):
    from rewardkit.train import smoke
    from rewardkit.train.smoke_models import Tiny

    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path / "cache"))
    spec = {
        "rewards": {
            "bl": {"use": "bleurt", "model": "lucadiliello/BLEURT-20", "reference": "answer"},
            "em": {"use": "exact_match"},
        }
    }
    notes: list[str] = []
    swapped = smoke._swap_spec(spec, "rewards", "grpo", Tiny("답은 정답"), notes)
    local = swapped["rewards"]["bl"]["model"]
    assert Path(local).is_dir() and spec["rewards"]["bl"]["model"] == "lucadiliello/BLEURT-20"
    assert notes == [f"stage grpo: rewards.bl.model lucadiliello/BLEURT-20 -> tiny local BLEURT ({local})"]
    scores = compose(swapped)(completions=["답은 3", "x"], answer=["답은 3", "정답"])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)


SPECIAL_PAIRS = [
    ("use [SEP] between parts", "use [SEP]between parts"),
    ("[CLS] at the start", "ends with [MASK]"),
    ("[UNK][PAD] glued [sep] lower case is text", "[MASK] [MASK]  two spaces"),
    ("고양이가 [SEP] 매트", "[CLS][SEP][MASK][UNK][PAD]"),
]


@needs_spm
def test_special_token_strings_are_split_out_as_bleurt_pytorch_does():
    """bleurt-pytorch's slow tokenizer (transformers 4.x `PreTrainedTokenizer.tokenize`) cuts the text at its
    special tokens with transformers' `Trie` and runs SentencePiece only on the text between them; the reference
    here is built the same way, with transformers' own Trie and the fixture's SentencePiece model."""
    import sentencepiece
    from transformers.tokenization_python import Trie

    spm = sentencepiece.SentencePieceProcessor(model_file=str(FIXTURE / "spm.model"))
    trie = Trie()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for token in specials:
        trie.add(token)

    def reference_ids(text: str) -> list[int]:
        return [
            i
            for part in trie.split(text)
            if part
            for i in ([spm.piece_to_id(part)] if part in specials else spm.encode(part))
        ]

    tokenizer, _ = _reward().model()
    for ref, cand in SPECIAL_PAIRS:
        for text in (ref, cand):
            assert tokenizer.encode(text) == reference_ids(text), text
        assert tokenizer.encode(ref) != spm.encode(ref)  # the plain SentencePiece ids differ: the split matters
    ids = tokenizer.encode("a [SEP] b")
    assert ids.count(spm.piece_to_id("[SEP]")) == 1 and tokenizer.encode("[sep]") == spm.encode("[sep]")
    # ordinary text is unchanged, so the fixture's scores still hold (test_parity_with_bleurt_pytorch_within_1e_5)
    assert all(tokenizer.encode(p["reference"]) == spm.encode(p["reference"]) for p in EXPECTED)
