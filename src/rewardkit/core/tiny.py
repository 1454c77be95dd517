"""Tiny randomly initialised models that run offline on CPU, for tests and the offline demo."""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardkit.core.reading import read_text
from rewardkit.core.tiny_bert import BERT_WORDS, save_tiny_bert, save_tiny_bleurt

if TYPE_CHECKING:  # heavy imports stay out of `import rewardkit.core.tiny`
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

PAD, UNK, BOS = "<pad>", "<unk>", "<s>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
# eos is the end-of-turn token so generation of a chat reply stops where the template closes the turn.
EOS = IM_END
SPECIAL_TOKENS = [PAD, UNK, BOS, IM_START, IM_END]

DEFAULT_ALPHABET = string.digits + string.ascii_letters + string.punctuation + " \n\t"

# ChatML-like; `{% generation %}` markers make SFT's `assistant_only_loss=True` work, and <|im_end|> sits inside
# them so TRL's "stop token trained" check passes.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{%- else %}{{- message['content'] + '<|im_end|>' }}{%- endif %}"
    "{{- '\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)

MODEL_MAX_LENGTH = 512
# Copied from transformers.models.qwen2.tokenization_qwen2 so our pipeline equals the one Qwen2Tokenizer rebuilds.
_QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def _bytes_to_unicode() -> dict[int, str]:
    """Return GPT-2's byte → printable-char table (what the ByteLevel pre-tokenizer emits)."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def build_char_tokenizer(alphabet: str | None = None, extra_chars: str = "") -> PreTrainedTokenizerFast:
    """Build a character-level byte-BPE tokenizer with ChatML special tokens and a chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # Why byte-level BPE and not WordLevel: transformers 5 AutoTokenizer ignores tokenizer_class for
    # model_type "qwen2" and rebuilds the pipeline as Qwen2Tokenizer (NFC + Split + ByteLevel + BPE from our
    # vocab/merges). Building exactly that pipeline makes save → AutoTokenizer.from_pretrained lossless, and
    # with all 256 bytes in the vocab no input is ever unknown. ASCII is one token per character; every
    # multi-byte character of `alphabet`/`extra_chars` (e.g. Hangul) is merged into one token; any other
    # character falls back to its UTF-8 bytes.
    byte_chars = _bytes_to_unicode()
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for b in range(256):
        vocab[byte_chars[b]] = len(vocab)
    merges: list[tuple[str, str]] = []
    for ch in (alphabet if alphabet is not None else DEFAULT_ALPHABET) + extra_chars:
        pieces = [byte_chars[b] for b in ch.encode("utf-8")]
        merged = pieces[0]
        for piece in pieces[1:]:
            # A UTF-8 lead byte never continues another char, so these merges cannot span two characters.
            if merged + piece not in vocab:
                merges.append((merged, piece))
                vocab[merged + piece] = len(vocab)
            merged += piece

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        additional_special_tokens=[IM_START],
        chat_template=CHAT_TEMPLATE,
        model_max_length=MODEL_MAX_LENGTH,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )


def build_tiny_causal_lm(
    tokenizer: PreTrainedTokenizerFast,
    arch: str = "qwen2",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
    **config_overrides: Any,
) -> PreTrainedModel:
    """Build a randomly initialised tiny Qwen2 or Llama causal LM whose vocabulary matches `tokenizer`."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    classes = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM)}
    if arch not in classes:
        raise ValueError(f"unknown arch {arch!r}; choose one of {sorted(classes)}")
    config_cls, model_cls = classes[arch]
    params: dict[str, Any] = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=MODEL_MAX_LENGTH,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    params.update(config_overrides)
    config = config_cls(**params)
    torch.manual_seed(seed)  # same seed → identical weights, so tests are reproducible
    model = model_cls(config)
    model.generation_config = GenerationConfig(
        pad_token_id=config.pad_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
    )
    return model


def save_tiny_causal_lm(
    path: str | Path,
    alphabet: str | None = None,
    extra_chars: str = "",
    **model_kwargs: Any,
) -> Path:
    """Save a tiny causal LM plus its char tokenizer to `path`, loadable offline with the Auto* classes."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_char_tokenizer(alphabet, extra_chars=extra_chars)
    model = build_tiny_causal_lm(tokenizer, **model_kwargs)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_tiny_classifier(path: str | Path, extra_chars: str = "", **model_kwargs: Any) -> Path:
    """Save a tiny Qwen2/Llama sequence classifier (one logit: a reward model) with the char tokenizer."""
    import torch
    from transformers import AutoModelForSequenceClassification

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_char_tokenizer(None, extra_chars=extra_chars)
    config = build_tiny_causal_lm(tokenizer, **model_kwargs).config
    config.num_labels = 1
    torch.manual_seed(model_kwargs.get("seed", 0))
    AutoModelForSequenceClassification.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# --- `rewardkit tiny DIR`: one command for a local model that runs offline on CPU --------------------------------
TEXT_SUFFIXES = (".jsonl", ".json", ".txt", ".csv", ".tsv")


def strings_in(value: object) -> list[str]:
    """Every string inside a JSON-like value (dict values, list items), found without recursion."""
    out: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return out


def data_chars(paths: Sequence[str | Path]) -> str:
    """Every distinct non-ASCII character in the text of data files (.jsonl/.json: the strings of every value)."""
    import json

    chars: set[str] = set()
    for path in map(Path, paths):
        if path.suffix.lower() not in TEXT_SUFFIXES:
            raise ValueError(f"--from {path}: expected one of {', '.join(TEXT_SUFFIXES)}")
        text = read_text(path)  # bounded (REWARDKIT_MAX_INPUT_BYTES), strict UTF-8 with the line of an error
        if path.suffix.lower() == ".jsonl":
            texts = [s for line in text.splitlines() if line.strip() for s in strings_in(json.loads(line))]
        elif path.suffix.lower() == ".json":
            texts = strings_in(json.loads(text))
        else:
            texts = [text]
        for t in texts:
            chars.update(t)
    return "".join(sorted(c for c in chars if c not in string.printable))


TINY_KINDS = ("lm", "bert", "bleurt", "classifier")


def make_tiny(
    path: str | Path,
    kind: str = "lm",
    chars: str = "",
    arch: str = "qwen2",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
    init_range: float | None = None,
) -> Path:
    """A tiny random model in `path`: "lm" (causal LM), "bert" (for bertscore), "bleurt" (a BLEURT-20-shaped
    checkpoint in bleurt-pytorch's format), "classifier" (a reward model).

    Its tokenizer covers `chars` (one token per character; ASCII always), so it reads the user's data. What
    `rewardkit tiny`, the demo and the `--smoke` stand-ins build. `seed` fixes the weights; `init_range` is the
    standard deviation of the random weights (transformers' `initializer_range`; None: the architecture's 0.02).
    """
    init: dict[str, Any] = {} if init_range is None else {"initializer_range": init_range}
    if kind == "bert":
        letters = [c for c in chars if c.isalnum()]
        return save_tiny_bert(
            path,
            words=[*BERT_WORDS, *letters] if letters else None,
            num_layers=num_layers,
            hidden_size=hidden_size,
            seed=seed,
            init_range=init_range,
        )
    if kind == "bleurt":
        return save_tiny_bleurt(
            path,
            text=" ".join(c for c in chars if c.isalnum()),
            hidden_size=hidden_size,
            num_layers=num_layers,
            seed=seed,
            init_range=init_range,
        )
    sizes: dict[str, Any] = dict(
        arch=arch, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads, seed=seed, **init
    )
    if kind == "classifier":
        return save_tiny_classifier(path, extra_chars=chars, **sizes)
    if kind != "lm":
        raise ValueError(f"unknown tiny model kind {kind!r}; choose one of {', '.join(TINY_KINDS)}")
    return save_tiny_causal_lm(path, extra_chars=chars, **sizes)
