"""The tiny offline models in rewardkit.core.tiny load back with the Auto* classes and bert_score."""

from __future__ import annotations

import subprocess
import sys

import pytest

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi 가"},
    {"role": "assistant", "content": "Yo"},
]


def test_import_is_light():
    heavy = "('torch', 'transformers', 'tokenizers')"
    code = f"import sys, rewardkit.core.tiny; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_char_tokenizer_roundtrip_and_chat_template():
    from rewardkit.core.tiny import build_char_tokenizer

    tok = build_char_tokenizer(extra_chars="가옳")
    text = "Hello, world!\n\t 가 옳다 é ☃"
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text  # nothing is unknown: other chars fall back to UTF-8 bytes
    assert len(tok("abc 가")["input_ids"]) == 5  # ASCII and extra chars are one token each

    rendered = tok.apply_chat_template(MESSAGES[:2], tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|im_start|>assistant\n")
    out = tok.apply_chat_template(MESSAGES, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(masked) == "Yo<|im_end|>"  # the stop token is inside the assistant span
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id != tok.eos_token_id


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_saved_causal_lm_reloads_identically(tmp_path, arch):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    from rewardkit.core.tiny import build_char_tokenizer, save_tiny_causal_lm

    path = save_tiny_causal_lm(tmp_path / arch, arch=arch)
    original = build_char_tokenizer()
    loaded = AutoTokenizer.from_pretrained(path)
    text = "x = 1 + 2\n  done. 가"
    # transformers 5 rebuilds qwen2 tokenizers as Qwen2Tokenizer: the pipeline must survive that.
    assert loaded(text)["input_ids"] == original(text)["input_ids"]
    rendered = original.apply_chat_template(MESSAGES, tokenize=False)
    assert loaded.apply_chat_template(MESSAGES, tokenize=False) == rendered

    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.model_type == arch
    assert model.config.vocab_size == len(loaded)
    assert model.generation_config.eos_token_id == loaded.eos_token_id
    enc = loaded.apply_chat_template(MESSAGES[:2], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert out.shape[1] <= enc["input_ids"].shape[1] + 4

    rm = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    batch = loaded(["a", "bcd"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert rm(**batch).logits.shape == (2, 1)


def test_tiny_bert_works_with_bert_score(tiny_bert_dir):
    import bert_score

    scorer = bert_score.BERTScorer(model_type=str(tiny_bert_dir), num_layers=2)
    assert scorer._tokenizer.model_max_length == 512
    p, r, f = scorer.score(["the cat sat on the mat", "hello there"], ["the dog sat on the mat", "hello there"])
    assert f[1].item() == pytest.approx(1.0, abs=1e-5)
    assert 0.0 < f[0].item() < 1.0 - 1e-4
    _, _, f2 = bert_score.score(["the quick brown fox"], ["a lazy dog"], model_type=str(tiny_bert_dir), num_layers=2)
    assert f2.shape == (1,)


def test_tiny_bert_extra_words_tokenize(tmp_path):
    from transformers import AutoTokenizer

    from rewardkit.core.tiny import save_tiny_bert

    path = save_tiny_bert(tmp_path / "ko", words=["옳다"] + list("가나다"))
    tokens = AutoTokenizer.from_pretrained(path).tokenize("가나 옳다 jumps")
    assert tokens[:3] == ["가", "##나", "옳다"]
    assert "[UNK]" not in tokens
    with pytest.raises(ValueError, match="t5"):
        save_tiny_bert(tmp_path / "mt5_like")
