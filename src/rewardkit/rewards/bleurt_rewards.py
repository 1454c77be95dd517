"""BLEURT between the completion and the reference: the BLEURT-20 family's PyTorch checkpoints on transformers 5.

The checkpoints published for `bleurt-pytorch` (lucadiliello/BLEURT-20, -D12, -D6, -D3) hold a
BleurtForSequenceClassification: a BERT-style encoder whose embeddings (`embedding_size`) are projected to
`hidden_size` before the layers, a tanh pooler over the first token and a 1-output linear head. That is
transformers' RemBERT layout exactly (`input_embedding_size` -> `embedding_hidden_mapping_in`), so the model here
is `RemBertForSequenceClassification` with the checkpoint's weights renamed; a checkpoint without
`embedding_size` gets an identity projection. The tokenizer is the checkpoint's SentencePiece model read with
`sentencepiece` (what bleurt-pytorch's slow tokenizer does: the text is cut at special-token strings such as
`[SEP]` first, each kept as its own id): `[CLS] reference [SEP] candidate [SEP]`, token types 0 then 1, the pair
cut longest-first to `max_length`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from rewardkit.core.errors import ConfigError
from rewardkit.core.validation import ModelRef
from rewardkit.rewards.base import Reference, Reward, RewardParams, reference_options
from rewardkit.rewards.models import MODELS, length_batches, resolve_device

if TYPE_CHECKING:
    from transformers import PreTrainedModel

FAMILY = "bleurt"  # this module's models in the shared cache (rewards.models.MODELS)
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_HINT = (
    "pass a local folder holding a bleurt-pytorch checkpoint (config.json, pytorch_model.bin or "
    "model.safetensors, spm.model), or put the hub model (e.g. lucadiliello/BLEURT-20-D12) in the Hugging Face "
    "cache first."
)


class SentencePiecePairs:
    """bleurt-pytorch's tokenization of (reference, candidate) pairs, on `sentencepiece` alone."""

    def __init__(self, spm_file: Path, settings: dict) -> None:
        try:
            import sentencepiece
        except ImportError:
            raise ConfigError(
                "bleurt: the tokenizer needs the sentencepiece package.",
                hint="pip install 'rewardkit[bleurt]' (or pip install sentencepiece).",
            ) from None
        self.spm = sentencepiece.SentencePieceProcessor(model_file=str(spm_file))
        self.lower = bool(settings.get("do_lower_case", False))
        unk = self.spm.unk_id()
        ids = {}
        for role, default in (("cls", "[CLS]"), ("sep", "[SEP]"), ("pad", "[PAD]")):
            token = settings.get(f"{role}_token", default)
            token = token.get("content", default) if isinstance(token, dict) else token
            ids[role] = self.spm.piece_to_id(token)
            if ids[role] == unk and token != self.spm.id_to_piece(unk):
                raise ConfigError(
                    f"bleurt: {spm_file}: the special token {token!r} is not in the SentencePiece vocabulary.",
                    hint=_HINT,
                )
        self.cls, self.sep, self.pad = ids["cls"], ids["sep"], ids["pad"]
        self.special = _special_tokens(settings)
        # Longest first, so that of two tokens starting at one place the longer wins (transformers' Trie rule).
        self._split = re.compile("|".join(re.escape(t) for t in sorted(self.special, key=len, reverse=True)))

    def encode(self, text: str) -> list[int]:
        """Token ids of one text as bleurt-pytorch's slow tokenizer gives them (transformers 4.x
        `PreTrainedTokenizer.tokenize`): the text is cut at every special-token string (`[SEP]`, `[CLS]`,
        `[MASK]`, `[UNK]`, `[PAD]`, matched case-sensitively), each becomes its own id, and only the text between
        them goes through SentencePiece (lower-cased first when `do_lower_case`)."""
        parts: list[str] = []
        start = 0
        for match in self._split.finditer(text):
            parts += [text[start : match.start()], match.group()]
            start = match.end()
        parts.append(text[start:])
        for i in range(1, len(parts), 2):  # an added token's lstrip/rstrip eat the whitespace beside it
            lstrip, rstrip = self.special[parts[i]]
            parts[i - 1] = parts[i - 1].rstrip() if lstrip else parts[i - 1]
            parts[i + 1] = parts[i + 1].lstrip() if rstrip else parts[i + 1]
        ids: list[int] = []
        for i, part in enumerate(parts):
            if i % 2:
                ids.append(self.spm.piece_to_id(part))
            elif part:
                ids += self.spm.encode(part.lower() if self.lower else part)
        return ids

    def pair(self, reference: list[int], candidate: list[int], max_length: int) -> tuple[list[int], list[int]]:
        """Input ids and token types of one pair, the longer side cut first until the pair fits."""
        ref, cand = list(reference), list(candidate)
        while len(ref) + len(cand) + 3 > max_length:
            (ref if len(ref) > len(cand) else cand).pop()
        return [self.cls, *ref, self.sep, *cand, self.sep], [0] * (len(ref) + 2) + [1] * (len(cand) + 1)


_SPECIAL_DEFAULTS = {"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "unk": "[UNK]", "mask": "[MASK]", "bos": "[CLS]"}


def _special_tokens(settings: dict) -> dict[str, tuple[bool, bool]]:
    """The strings bleurt-pytorch's tokenizer never splits (its special tokens, BleurtSPTokenizer's defaults
    where the folder names none, and the added tokens it saved), each with its (lstrip, rstrip) flags."""
    values: list[Any] = [settings.get(f"{role}_token", default) for role, default in _SPECIAL_DEFAULTS.items()]
    values += [settings.get("eos_token", "[SEP]"), *(settings.get("additional_special_tokens") or [])]
    values += list((settings.get("added_tokens_decoder") or {}).values())
    found: dict[str, tuple[bool, bool]] = {}
    for value in values:
        token = value.get("content") if isinstance(value, dict) else value
        if isinstance(token, str) and token:
            flags = (
                (bool(value.get("lstrip")), bool(value.get("rstrip"))) if isinstance(value, dict) else (False, False)
            )
            found[token] = tuple(a or b for a, b in zip(found.get(token, (False, False)), flags))  # type: ignore[assignment]
    return found


def _files(model: str) -> Path:
    """The checkpoint's folder: `model` itself, or its hub snapshot of the files BLEURT needs."""
    if os.path.isdir(model):
        return Path(model)
    if os.path.exists(model) or model.startswith((".", "/", "~")):
        raise ConfigError(f"bleurt: model {model!r} is not a folder.", hint=_HINT)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, allow_patterns=["*.json", "*.model", *_WEIGHTS]))
    except Exception as exc:  # offline, unknown repo, gated: one line with the reason
        reason = " ".join(str(exc).split()).rstrip(".")[:300]
        raise ConfigError(f"bleurt: cannot get model {model!r}: {reason}.", hint=_HINT) from exc


def _state_dict(folder: Path, config: dict) -> dict:
    """The checkpoint's weights under RemBERT's names (bleurt.* -> rembert.*, the projection renamed)."""
    import torch

    path = next((folder / name for name in _WEIGHTS if (folder / name).is_file()), None)
    if path is None:
        raise ConfigError(f"bleurt: {folder} has no {' or '.join(_WEIGHTS)}.", hint=_HINT)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        raw = load_file(str(path))
    else:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    out = {}
    for key, value in raw.items():
        if key.endswith("position_ids"):
            continue  # a buffer, rebuilt by the model
        key = key.replace("encoder.embedding_projection.", "encoder.embedding_hidden_mapping_in.")
        out["rembert." + key[len("bleurt.") :] if key.startswith("bleurt.") else key] = value
    if config.get("embedding_size") is None:  # no projection in the checkpoint: an exact identity
        size = config["hidden_size"]
        out["rembert.encoder.embedding_hidden_mapping_in.weight"] = torch.eye(size)
        out["rembert.encoder.embedding_hidden_mapping_in.bias"] = torch.zeros(size)
    return out


def _load(model: str, device: str) -> tuple[SentencePiecePairs, Any]:
    folder = _files(model)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"bleurt: cannot read {folder / 'config.json'}: {exc}.", hint=_HINT) from exc
    if config.get("model_type") != "bleurt" or config.get("num_labels", 1) != 1:
        raise ConfigError(
            f"bleurt: {folder} holds model_type {config.get('model_type')!r}, not a one-output "
            f"bleurt-pytorch checkpoint.",
            hint=_HINT,
        )
    spm_file = next((folder / n for n in ("spm.model", "sentencepiece.model") if (folder / n).is_file()), None)
    if spm_file is None:
        raise ConfigError(f"bleurt: {folder} has no spm.model (the SentencePiece vocabulary).", hint=_HINT)
    settings: dict = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        if (folder / name).is_file():
            settings.update(json.loads((folder / name).read_text(encoding="utf-8")))
    tokenizer = SentencePiecePairs(spm_file, settings)
    import torch
    from transformers import RemBertConfig, RemBertForSequenceClassification

    embedding = config.get("embedding_size") or config["hidden_size"]
    remb = RemBertConfig(
        vocab_size=config["vocab_size"],
        hidden_size=config["hidden_size"],
        input_embedding_size=embedding,
        output_embedding_size=embedding,
        num_hidden_layers=config["num_hidden_layers"],
        num_attention_heads=config["num_attention_heads"],
        intermediate_size=config["intermediate_size"],
        hidden_act=config.get("hidden_act", "gelu"),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        classifier_dropout_prob=0.0,
        max_position_embeddings=config["max_position_embeddings"],
        type_vocab_size=config.get("type_vocab_size", 2),
        layer_norm_eps=config.get("layer_norm_eps", 1e-12),
        # num_labels is a PretrainedConfig kwarg taken at runtime; transformers' typed __init__ omits it
        pad_token_id=config.get("pad_token_id", 0),
        bos_token_id=None,
        eos_token_id=None,
        num_labels=1,
    )  # type: ignore[call-arg]
    with torch.device("meta"):  # no random init of weights about to be replaced
        net = RemBertForSequenceClassification(remb)
    try:
        net.load_state_dict(_state_dict(folder, config), strict=True, assign=True)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:400]
        raise ConfigError(f"bleurt: the weights in {folder} do not fit its config.json: {reason}.", hint=_HINT) from exc
    net.rembert.embeddings.position_ids = torch.arange(config["max_position_embeddings"]).expand((1, -1))
    # transformers' decorated `to` is typed as an unbound function (self: PreTrainedModel), so a device string
    # looks like the model argument; at runtime it is the bound nn.Module.to(device)
    return tokenizer, net.to(device).eval()  # type: ignore[arg-type]


def load_model(model: str, device: str) -> tuple[SentencePiecePairs, PreTrainedModel]:
    """The (tokenizer, model) pair for this checkpoint and device, loaded on first request and then reused."""
    return MODELS.get((FAMILY, model, device), lambda: _load(model, device))


def clear_model_cache() -> None:
    """Forget every loaded BLEURT model (frees its memory once no call holds it)."""
    MODELS.clear(FAMILY)


class BLEURT(Reward):
    """BLEURT score of the completion (candidate) against the reference, as bleurt-pytorch computes it.

    Equal to `BleurtForSequenceClassification(**tokenizer(references, candidates, padding="longest")).logits`
    of bleurt-pytorch (transformers 4.x) within 1e-5 (tests/fixtures/bleurt_tiny, made by
    tests/scripts/make_bleurt_fixture.py). The model loads once per process on first call and is shared by
    every `bleurt` reward with the same model and device; pickling never pickles it. Each distinct
    (reference, candidate) pair is scored once per call (in GRPO a reference repeats G times), in batches sorted
    by length and, on CPU, cut where lengths drop so padding stays small.

    Scores are BLEURT's raw regression output (BLEURT-20: about 0 for unrelated text, about 1 for a paraphrase;
    not clipped). An empty (whitespace-only) reference scores None; an empty completion is scored by the model
    like any text (BLEURT has no special case for it). Pairs longer than `max_length` tokens lose tokens from
    the end of the longer side first.

    Memory: fp32 weights (BLEURT-20 ≈ 580M parameters ≈ 2.3 GB; -D12 ≈ 170M; -D6 ≈ 45M; -D3 ≈ 30M) plus per
    batch about batch_size × L × (intermediate + 3·hidden + heads·L) × 4 bytes. Needs `sentencepiece`
    (`pip install 'rewardkit[bleurt]'`).

    Args:
        reference (`str`, defaults to `"answer"`): dataset column with the gold text (or a list of golds).
        model (`str`, defaults to `"lucadiliello/BLEURT-20"`): hub id or local folder of a bleurt-pytorch
            checkpoint (BLEURT-20, -D12, -D6, -D3).
        batch_size (`int`, defaults to `32`): pairs per forward pass.
        max_length (`int`, defaults to `512`): tokens per pair, special tokens included.
        device (`str`, *optional*): `"cuda"`, `"cpu"`...; default the current CUDA device, else CPU.
        alternatives (`str`, *optional*): separator splitting one gold into alternatives (best one counts).

    Example:
    >>> from rewardkit import get_reward
    >>> reward = get_reward("bleurt", model="lucadiliello/BLEURT-20-D12")
    >>> reward(completions=["a bird chirps by the window"], answer=["a bird chirps by the window"])  # doctest: +SKIP
    [0.96...]
    """

    name = "bleurt"
    needs_reference = True

    class Params(RewardParams):
        reference: str | None = "answer"
        model: Annotated[str, ModelRef("model", tiny="bleurt")] = Field("lucadiliello/BLEURT-20", min_length=1)
        batch_size: int = Field(32, ge=1)
        max_length: int = Field(512, ge=4)
        device: str | None = None
        alternatives: str | None = Field(None, min_length=1)

    @property
    def device(self) -> str:
        """`device`, else the current CUDA device (each rank of a multi-GPU run has its own), else CPU."""
        return resolve_device(self.params.device)

    def merges_calls(self) -> bool:
        """Each row's score is the model's output for its own pair."""
        return True

    def model(self) -> tuple[SentencePiecePairs, PreTrainedModel]:
        """(tokenizer, model) from the process-wide cache."""
        return load_model(self.params.model, self.device)

    def __call__(self, *args: Any, **kwargs: Any) -> list[float | None]:
        if self.params.timeout is None:
            self.model()  # a load error stops here once, not once per row in the on_error fallback
        return super().__call__(*args, **kwargs)

    def pair_scores(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], float]:
        """BLEURT of each distinct (reference, candidate) pair."""
        import torch

        tokenizer, net = self.model()
        distinct = list(dict.fromkeys(pairs))  # a fixed order: the same batches, the same floats, every run
        if not distinct:
            return {}
        encoded = {t: tokenizer.encode(t) for t in dict.fromkeys(t for pair in distinct for t in pair)}
        inputs = [
            tokenizer.pair(encoded[r], encoded[c], min(self.params.max_length, net.config.max_position_embeddings))
            for r, c in distinct
        ]
        device = next(net.parameters()).device
        scores: list[float] = [0.0] * len(distinct)
        lengths = [len(ids) for ids, _ in inputs]
        with torch.inference_mode():
            for batch in length_batches(lengths, self.params.batch_size, device.type == "cpu"):
                width = max(lengths[i] for i in batch)
                ids = torch.full((len(batch), width), tokenizer.pad, dtype=torch.long)
                types = torch.zeros((len(batch), width), dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    n = lengths[i]
                    ids[row, :n], types[row, :n], mask[row, :n] = (
                        torch.tensor(inputs[i][0]),
                        torch.tensor(inputs[i][1]),
                        1,
                    )
                logits = (
                    net(input_ids=ids.to(device), token_type_ids=types.to(device), attention_mask=mask.to(device))
                    .logits[:, 0]
                    .float()
                    .cpu()
                    .tolist()
                )
                for row, i in enumerate(batch):
                    scores[i] = logits[row]
        return dict(zip(distinct, scores))

    def score_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        rows = [
            [o for o in reference_options(ref, self.params.alternatives) if o.strip()]
            for ref in (references or [None] * len(completions))
        ]
        value = self.pair_scores([(o, c) for c, opts in zip(completions, rows) for o in opts])
        return [max(value[(o, c)] for o in opts) if opts else None for c, opts in zip(completions, rows)]
