"""Tiny random BERT-family models that run offline on CPU: a BERT for BERTScore, a BLEURT checkpoint."""

from __future__ import annotations

import string
from pathlib import Path

_BERT_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BERT_WORDS = (
    "the a an and or but if of to in on at by for with from as is are was were be been being it this that "
    "these those he she they we you i me him her them us my your his its our their not no yes do does did "
    "have has had will would can could should may might must shall say said get got make made go went see "
    "saw know knew think take come give find tell work call try ask need feel become leave put mean keep "
    "let begin seem help show hear play run move like live believe bring write sit stand lose pay meet "
    "include continue set learn change lead understand watch follow stop create speak read spend grow open "
    "walk win offer remember love consider appear buy wait serve die send build stay fall cut reach kill "
    "time year people way day man woman child world life hand part place case week company system program "
    "question work government number night point home water room mother area money story fact month lot "
    "right study book eye job word business issue side kind head house service friend father power hour "
    "game line end member law car city name team minute idea kid body information back parent face others "
    "level office door health person art war history party result morning reason research girl guy moment "
    "air teacher force education good new first last long great little own other old big high different "
    "small large next early young important few public bad same able answer correct sentence wrong true "
    "false cat dog sat mat quick brown fox jumps over lazy hello there thanks reward model train test"
).split()
_BERT_SUFFIXES = ["s", "es", "ed", "ing", "er", "est", "ly", "ness", "ment", "tion"]


def _bert_vocab(words: list[str] | None) -> list[str]:
    """Return a WordPiece vocabulary: specials, single chars, `##` chars, words and common suffixes."""
    vocab: list[str] = list(_BERT_SPECIAL)
    chars = string.ascii_lowercase + string.digits + string.punctuation
    candidates = list(chars) + ["##" + c for c in string.ascii_lowercase + string.digits]
    for word in words if words is not None else BERT_WORDS:
        candidates.append(word.lower())
        if len(word) == 1:  # a caller's single characters (e.g. Hangul) must also work inside words
            candidates.append("##" + word.lower())
    candidates += ["##" + s for s in _BERT_SUFFIXES]
    seen = set(vocab)
    for tok in candidates:
        if tok and tok not in seen:
            seen.add(tok)
            vocab.append(tok)
    return vocab


def save_tiny_bert(
    path: str | Path,
    words: list[str] | None = None,
    num_layers: int = 2,
    hidden_size: int = 32,
    seed: int = 0,
    init_range: float | None = None,
) -> Path:
    """Save a tiny random BERT + WordPiece vocab that `bert_score` loads offline via `model_type=str(path)`."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    path = Path(path)
    # bert_score.utils.get_model loads T5EncoderModel whenever "t5" occurs in model_type, and a
    # "scibert" prefix triggers a download: refuse such paths instead of failing obscurely later.
    if "t5" in str(path) or str(path).startswith("scibert"):
        raise ValueError(f"bert_score would misread {str(path)!r} (contains 't5' or starts with 'scibert')")
    path.mkdir(parents=True, exist_ok=True)
    vocab = _bert_vocab(words)
    # transformers 5 ignores `vocab_file=`: pass the vocab itself. Without an explicit model_max_length the
    # tokenizer reports a huge sentinel, and bert_score truncates to tokenizer.model_max_length.
    tokenizer = BertTokenizer(
        vocab={tok: i for i, tok in enumerate(vocab)},
        do_lower_case=True,
        strip_accents=False,  # lowercasing would otherwise NFD-split Hangul into jamo that miss the vocab
        model_max_length=512,
    )
    tokenizer.save_pretrained(path)
    # transformers 5 saves only tokenizer.json; a vocab.txt keeps the folder readable by other BERT loaders.
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")

    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=max(1, hidden_size // 16),
        intermediate_size=hidden_size * 2,
        max_position_embeddings=512,
        pad_token_id=0,
        initializer_range=0.02 if init_range is None else init_range,  # None: transformers' default
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(path)
    return path


def save_tiny_bleurt(
    path: str | Path,
    text: str = "",
    hidden_size: int = 32,
    num_layers: int = 2,
    seed: int = 0,
    init_range: float | None = None,
) -> Path:
    """Save a tiny random BLEURT checkpoint in bleurt-pytorch's format (config.json, pytorch_model.bin,
    spm.model), with a SentencePiece vocabulary trained on `text` and some English words; needs sentencepiece."""
    import io
    import json

    try:
        import sentencepiece
    except ImportError:
        raise ValueError("a tiny BLEURT needs the sentencepiece package: pip install 'rewardkit[bleurt]'") from None
    import torch
    from transformers import RemBertConfig, RemBertForSequenceClassification

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    words = text.split() + list(BERT_WORDS) + list(string.ascii_letters + string.digits + string.punctuation)
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)] * 4
    proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=proto,
        # Every character of the text must get a piece (character_coverage 1.0): a fixed 128 fails on Korean data.
        vocab_size=128 + len(set("".join(lines))),
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
        minloglevel=2,
    )
    (path / "spm.model").write_bytes(proto.getvalue())
    vocab = sentencepiece.SentencePieceProcessor(model_proto=proto.getvalue()).get_piece_size()
    embedding = max(8, hidden_size // 2)
    config = RemBertConfig(
        vocab_size=vocab,
        hidden_size=hidden_size,
        input_embedding_size=embedding,
        output_embedding_size=embedding,
        num_hidden_layers=num_layers,
        num_attention_heads=max(1, hidden_size // 16),
        intermediate_size=hidden_size * 2,
        max_position_embeddings=512,
        bos_token_id=None,
        eos_token_id=None,
        num_labels=1,
        initializer_range=0.02 if init_range is None else init_range,  # None: transformers' default
    )  # type: ignore[call-arg]  # a runtime PretrainedConfig kwarg, untyped
    torch.manual_seed(seed)
    state = RemBertForSequenceClassification(config).state_dict()
    renamed = {
        k.replace("encoder.embedding_hidden_mapping_in.", "encoder.embedding_projection.").replace(
            "rembert.", "bleurt.", 1
        ): v
        for k, v in state.items()
    }
    torch.save(renamed, path / "pytorch_model.bin")
    (path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "bleurt",
                "architectures": ["BleurtForSequenceClassification"],
                "vocab_size": vocab,
                "embedding_size": embedding,
                "hidden_size": hidden_size,
                "num_hidden_layers": num_layers,
                "num_attention_heads": config.num_attention_heads,
                "intermediate_size": hidden_size * 2,
                "hidden_act": "gelu",
                "max_position_embeddings": 512,
                "type_vocab_size": 2,
                "layer_norm_eps": 1e-12,
                "pad_token_id": 0,
                "num_labels": 1,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    return path
