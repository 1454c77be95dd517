"""Build the tiny BLEURT fixture with the original `bleurt-pytorch` (transformers 4.x), and its expected scores.

Run in a venv of its own (bleurt-pytorch 0.0.1 does not import with transformers 5):

    python -m venv /tmp/bleurt-venv && /tmp/bleurt-venv/bin/pip install torch==2.13.0 "transformers<5" \
        sentencepiece protobuf bleurt-pytorch
    /tmp/bleurt-venv/bin/python tests/scripts/make_bleurt_fixture.py tests/fixtures/bleurt_tiny

It trains a tiny SentencePiece vocabulary offline (on the text below), builds a BleurtForSequenceClassification
with BLEURT-20's layout at toy size (embedding_size 16 projected to hidden_size 32, 2 layers), seeded random
weights drawn wide enough that scores differ from pair to pair, saves it as bleurt-pytorch loads its hub
checkpoints (config.json, pytorch_model.bin, spm.model + tokenizer files), and scores fixed (reference,
candidate) pairs exactly as bleurt-pytorch's README does (tokenizer(references, candidates, padding="longest")).
expected.json keeps the pairs, the scores and the token ids, so a mismatch can be told apart from a tokenizer one.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import sentencepiece as spm
import torch
import transformers
from bleurt_pytorch import BleurtConfig, BleurtForSequenceClassification, BleurtTokenizer

CORPUS = """The cat sat on the mat. A bird chirps by the window. This is a random sentence.
The quick brown fox jumps over the lazy dog. Rewards should follow the call contract.
고양이가 매트 위에 앉았다. 띄어쓰기는 단어 단위로 한다. "돼요"가 옳다. 어간 뒤에 어미가 붙는다.
Numbers like 12, 3.14 and 1,024 appear too. Checkpoints are compared on the same rows.
"""

PAIRS = [
    ("a bird chirps by the window", "a bird chirps by the window"),
    ("this is a random sentence", "this looks like a random sentence"),
    ("The cat sat on the mat.", "The dog sat on the mat."),
    ("고양이가 매트 위에 앉았다.", "고양이가 매트에 앉았다."),
    ('"돼요"가 옳다. 어간 뒤에 어미가 붙는다.', '"되요"가 옳다.'),
    ("Numbers like 12 and 3.14", ""),
    ("", "empty reference"),
    ("The quick brown fox jumps over the lazy dog. " * 3, "quick fox"),
    ("words never seen: zyx qwv", "완전히 다른 문장"),
]


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS.splitlines() * 20),
        model_writer=model_proto,
        vocab_size=120,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        pad_piece="[PAD]",
        unk_piece="[UNK]",
        user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
        hard_vocab_limit=False,
        num_threads=1,
    )
    (out / "spm.model").write_bytes(model_proto.getvalue())
    vocab_size = spm.SentencePieceProcessor(model_proto=model_proto.getvalue()).get_piece_size()

    torch.manual_seed(0)
    config = BleurtConfig(
        vocab_size=vocab_size,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        hidden_act="gelu",
        pad_token_id=0,
        num_labels=1,
    )
    model = BleurtForSequenceClassification(config).eval()
    with torch.no_grad():
        for param in model.parameters():  # the default init (std 0.02) gives nearly equal scores for every pair
            param.normal_(0.0, 0.4)
    model.save_pretrained(out, safe_serialization=False)  # pytorch_model.bin, like the BLEURT-20 hub repos
    tokenizer = BleurtTokenizer.from_pretrained(str(out), do_lower_case=False)
    tokenizer.save_pretrained(out)

    references, candidates = [r for r, _ in PAIRS], [c for _, c in PAIRS]
    with torch.no_grad():
        inputs = tokenizer(references, candidates, padding="longest", return_tensors="pt")
        scores = model(**inputs).logits.flatten().tolist()
    ids = [
        [int(t) for t, m in zip(row, mask) if m]
        for row, mask in zip(inputs["input_ids"].tolist(), inputs["attention_mask"].tolist())
    ]
    (out / "expected.json").write_text(
        json.dumps(
            {
                "made_with": {
                    "bleurt_pytorch": "0.0.1",
                    "transformers": transformers.__version__,
                    "torch": torch.__version__,
                    "tokenizer_class": type(tokenizer).__name__,
                },
                "pairs": [
                    {"reference": r, "candidate": c, "score": s, "input_ids": i}
                    for (r, c), s, i in zip(PAIRS, scores, ids)
                ],
            },
            ensure_ascii=False,
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print(
        f"{out}: {len(PAIRS)} pairs, scores {min(scores):.3f}..{max(scores):.3f}, tokenizer {type(tokenizer).__name__}"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/bleurt_tiny")
