"""BERTScore between the completion and the reference: bert-score's numbers, one model load per process.

The model and tokenizer come from bert-score's own loaders (`get_model`, `get_tokenizer`), the token ids from
`sent_encode`, the embeddings from `bert_encode` and the greedy matching from `greedy_cos_idf`; what changes
is the bookkeeping around them: each distinct token sequence is encoded once per call, batches are sorted by
token count (bert-score sorts by word count) and, on CPU, cut where lengths drop so padding stays small, and
identical (completion, reference) pairs are matched once.
"""

from __future__ import annotations

import ast
import functools
import os
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, Optional

from pydantic import Field

from rewardkit.core.errors import ConfigError
from rewardkit.core.module_source import literal, parse_module
from rewardkit.core.validation import ModelRef
from rewardkit.rewards.base import Reference, Reward, RewardParams, reference_options
from rewardkit.rewards.models import MODELS, length_batches, resolve_device

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_COLUMN = {"precision": 0, "recall": 1, "f": 2}  # bert-score's (P, R, F) order
FAMILY = "bertscore"  # this module's models in the shared cache
_UTILS = "bert_score.utils"


def _load(model_type: str, num_layers: int, device: str, use_fast_tokenizer: bool) -> tuple[Any, Any]:
    from bert_score.utils import get_model, get_tokenizer

    try:
        tokenizer = get_tokenizer(model_type, use_fast_tokenizer)
        model = get_model(model_type, num_layers, all_layers=False).to(device)
    except (OSError, ValueError, AssertionError, RuntimeError) as exc:
        reason = " ".join(str(exc).split()).rstrip(".")
        raise ConfigError(
            f"bertscore: cannot load model_type {model_type!r} with num_layers={num_layers} on {device!r}: {reason}.",
            hint="pass a local model folder as model_type (with "
            "num_layers), or put the model in the Hugging Face cache first.",
        ) from exc
    return tokenizer, model


def load_model(
    model_type: str, num_layers: int, device: str, use_fast_tokenizer: bool = False
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The (tokenizer, model) pair for these settings, loaded on first request and then reused."""
    return MODELS.get(
        (FAMILY, model_type, num_layers, device, use_fast_tokenizer),
        lambda: _load(model_type, num_layers, device, use_fast_tokenizer),
    )


@functools.lru_cache(maxsize=1)
def bert_score_tables() -> tuple[Callable[[str], str], dict[str, int]]:
    """(lang -> bert-score's default model, bert-score's model -> layer table), read from bert-score's source
    without importing it (its import loads torch, transformers and matplotlib: seconds before a config error);
    imported when the source is not in the expected shape."""
    layers, tree = literal(_UTILS, "model2layers"), parse_module(_UTILS)
    default, languages = None, None
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["lang2model"]:
            call = node.value  # lang2model = defaultdict(lambda: "<default model>")
            if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Lambda):
                body = call.args[0].body
                default = body.value if isinstance(body, ast.Constant) and isinstance(body.value, str) else None
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "lang2model.update" and node.args:
            try:
                languages = ast.literal_eval(node.args[0])
            except ValueError:
                languages = None
    if isinstance(default, str) and isinstance(languages, dict) and isinstance(layers, dict):
        table = {str(k): str(v) for k, v in languages.items()}
        return (lambda lang: table.get(lang.lower(), default)), dict(layers)
    from bert_score.utils import lang2model, model2layers  # imports torch and transformers

    return (lambda lang: lang2model[lang.lower()]), dict(model2layers)


def clear_model_cache() -> None:
    """Forget every loaded BERTScore model (frees its memory once no call holds it)."""
    MODELS.clear(FAMILY)


def _pad(tensors: list, value: float = 0.0) -> tuple[Any, Any]:
    """Stack variable-length tensors with the padding value and boolean mask bert-score's matcher expects."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    lens = torch.tensor([t.size(0) for t in tensors])
    mask = torch.arange(int(lens.max())).expand(len(tensors), -1) < lens.unsqueeze(1)
    return pad_sequence(tensors, batch_first=True, padding_value=value), mask.to(tensors[0].device)


class BERTScore(Reward):
    """BERTScore precision, recall or F1 of the completion against the reference, equal to bert-score's.

    Scores equal `bert_score.BERTScorer(...).score` (within 1e-5: only batch composition differs). The model
    loads once per process on first call and is shared by every `bertscore` reward with the same model_type,
    num_layers, device and use_fast_tokenizer; pickling the reward never pickles the model (a new process
    loads it on first call). `clear_model_cache()` in this module frees it.

    Less forward work than bert-score: each distinct token sequence is encoded once per call (in GRPO a
    reference repeats G times and identical completions are common; bert-score also deduplicates strings),
    batches are sorted by token count (bert-score: word count) and on CPU cut where lengths drop, so far fewer
    padding tokens go through the encoder, and each distinct (completion, reference) pair is matched once.

    Model defaults follow bert-score: `lang="en"` gives roberta-large, layer 17; no `lang` (or a language
    bert-score has no specific model for, e.g. "ko") gives bert-base-multilingual-cased, layer 9 (the 2025
    Korean grammar-QA competition's setting); "zh" and "tr" get bert-score's Chinese and Turkish models.
    A local folder works as `model_type` and then needs `num_layers`.

    idf: with `idf=True` and no `idf_sents`, the weights come from the distinct references of each call (each
    distinct gold counts as one document, so G repeats do not change them; they do change from batch to
    batch). For weights that stay fixed over a run pass `idf_sents` (e.g. every reference of the dataset).

    Empty cases: an empty (or whitespace-only) completion scores 0.0; an empty reference scores None (bert-score
    would print a warning and return 0 raw, or a negative number after rescaling).

    Memory (on the current CUDA device when available, unless `device` says otherwise): the fp32 weights of
    the kept layers (bert-base-multilingual-cased at 9 layers ≈ 156M parameters ≈ 0.62 GB; roberta-large at 17
    layers ≈ 266M ≈ 1.07 GB), plus per forward batch about batch_size × L × (intermediate + 3·hidden + heads·L)
    × 4 bytes (≈ 0.25 GB for mBERT at batch_size 64, L = 128 tokens), plus the call's kept embeddings, distinct
    sentences × L × hidden × 4 bytes (≈ 0.1 GB for 512 sentences of 64 tokens). In GRPO this shares the GPU
    with the policy: lower `batch_size` or set `device="cpu"` if memory is tight.

    Args:
        reference (`str`, defaults to `"answer"`): dataset column with the gold text (or a list of golds).
        score (`"f" | "precision" | "recall"`, defaults to `"f"`): which BERTScore measure to return.
        model_type (`str`, *optional*): Hugging Face model name or local folder; default from `lang`.
        num_layers (`int`, *optional*): layer whose output is used; bert-score's tuned layer by default,
            required for models bert-score does not know (local folders).
        idf (`bool`, defaults to `False`): weight tokens by inverse document frequency (see above).
        idf_sents (`list[str]`, *optional*): fixed corpus for the idf weights (needs `idf=True`).
        rescale_with_baseline (`bool`, defaults to `False`): rescale with bert-score's baseline (needs `lang`).
        baseline_path (`str`, *optional*): custom baseline file for the rescaling.
        lang (`str`, *optional*): language code, e.g. `"en"`, `"ko"`.
        batch_size (`int`, defaults to `64`): sentences per forward pass and pairs per matching step.
        device (`str`, *optional*): `"cuda"`, `"cuda:1"`, `"cpu"`...; default the current CUDA device, else CPU.
        use_fast_tokenizer (`bool`, defaults to `False`): bert-score's option of the same name.
        alternatives (`str`, *optional*): separator splitting one gold into alternatives, e.g. `"#"`.

    Example:
    >>> from rewardkit import get_reward
    >>> reward = get_reward("bertscore", lang="ko")  # bert-base-multilingual-cased, layer 9
    >>> reward(completions=["고양이가 매트에 앉았다."], answer=["고양이가 매트 위에 앉았다."])  # doctest: +SKIP
    [0.93...]
    """

    name = "bertscore"
    needs_reference = True

    class Params(RewardParams):
        reference: str | None = "answer"
        score: Literal["f", "precision", "recall"] = "f"
        # --smoke swaps a hub model for a tiny local BERT (2 layers, no baseline rescaling).
        model_type: Annotated[
            Optional[str],
            ModelRef(
                "model",
                tiny="bert",
                smoke=(("num_layers", 2), ("rescale_with_baseline", False), ("baseline_path", None)),
            ),
        ] = Field(None, min_length=1)
        num_layers: int | None = Field(None, ge=0)
        idf: bool = False
        idf_sents: list[str] | None = None
        rescale_with_baseline: bool = False
        baseline_path: str | None = None
        lang: str | None = Field(None, min_length=1)
        batch_size: int = Field(64, ge=1)
        device: str | None = None
        use_fast_tokenizer: bool = False
        alternatives: str | None = Field(None, min_length=1)

        @classmethod
        def default_model(cls, field: str, params: dict) -> str | None:
            """The model bert-score picks for `lang` when `model_type` is not given (preflight checks it too)."""
            try:
                return bert_score_tables()[0](str(params.get("lang") or "")) if field == "model_type" else None
            except Exception:
                return None

    def __init__(self, params: RewardParams | None = None, /, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        p = self.params
        num_layers = p.num_layers
        if p.model_type is None or num_layers is None:  # the competition presets give both: nothing to look up
            model_for, layers = bert_score_tables()
            self.model_type = p.model_type or model_for(p.lang or "")
            num_layers = num_layers if num_layers is not None else layers.get(self.model_type)
        else:
            self.model_type = p.model_type
        if num_layers is None:
            raise ConfigError(
                f"reward {self.name!r}: parameter 'num_layers' is required for model_type "
                f"{self.model_type!r} (bert-score has no tuned layer for it).",
                hint="num_layers=N, e.g. the model's last layer, config.json's num_hidden_layers.",
            )
        self.num_layers: int = num_layers
        if p.idf_sents is not None and not p.idf:
            raise ConfigError(f"reward {self.name!r}: parameter 'idf_sents' is set but idf is False.", hint="idf=True.")
        self.baseline_file = None
        if p.rescale_with_baseline:
            self.baseline_file = p.baseline_path or self._bert_score_baseline(p.lang)
            if not os.path.isfile(self.baseline_file):
                raise ConfigError(
                    f"reward {self.name!r}: no baseline file {self.baseline_file!r} for model_type "
                    f"{self.model_type!r}, lang {p.lang!r}.",
                    hint="rescale_with_baseline=False, or baseline_path='<file.tsv>'.",
                )
        self._idf_dict: Any = None
        self._baseline: Any = None

    def _bert_score_baseline(self, lang: str | None) -> str:
        if lang is None:
            raise ConfigError(
                f"reward {self.name!r}: parameter 'rescale_with_baseline' needs 'lang' (bert-score "
                "keeps one baseline per language).",
                hint="lang='en' (or baseline_path=...).",
            )
        import bert_score

        return os.path.join(
            os.path.dirname(bert_score.__file__), "rescale_baseline", lang.lower(), f"{self.model_type}.tsv"
        )

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_idf_dict"] = state["_baseline"] = None  # idf dicts hold a lambda; both are rebuilt on use
        return state

    @property
    def device(self) -> str:
        """`device`, else the current CUDA device (each rank of a multi-GPU run has its own), else CPU."""
        return resolve_device(self.params.device)

    def merges_calls(self) -> bool:
        """A row's score does not depend on the other rows, except with idf weights taken from each call's golds."""
        return not (self.params.idf and self.params.idf_sents is None)

    def model(self) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
        """(tokenizer, model) from the process-wide cache."""
        return load_model(self.model_type, self.num_layers, self.device, self.params.use_fast_tokenizer)

    def __call__(self, *args: Any, **kwargs: Any) -> list[float | None]:
        if self.params.timeout is None:
            self.model()  # a load error stops here once, not once per row in the on_error fallback
        return super().__call__(*args, **kwargs)

    def _idf(self, tokenizer: Any, references: list[str]) -> Any:
        from collections import defaultdict

        from bert_score.utils import get_idf_dict

        if not self.params.idf:  # what BERTScorer.score uses when idf is off
            weights: defaultdict[int, float] = defaultdict(lambda: 1.0)
            weights[tokenizer.sep_token_id] = 0
            weights[tokenizer.cls_token_id] = 0
            return weights
        if self.params.idf_sents is None:
            return get_idf_dict(sorted(set(references)), tokenizer, nthreads=0)
        if self._idf_dict is None:
            self._idf_dict = get_idf_dict(self.params.idf_sents, tokenizer, nthreads=0)
        return self._idf_dict

    def _rescale(self, preds: Any) -> Any:
        if self.baseline_file is None:
            return preds
        if self._baseline is None:  # read as BERTScorer.baseline_vals does
            import pandas as pd
            import torch

            row = pd.read_csv(self.baseline_file).iloc[self.num_layers].to_numpy()
            self._baseline = torch.tensor(row[1:]).float()  # a copy: pandas may hand out a read-only array
        return (preds - self._baseline) / (1 - self._baseline)

    def _embed(self, ids: list[tuple], tokenizer: Any, model: Any) -> list:
        """Last-layer embeddings of each distinct id sequence, encoded in length-sorted batches."""
        from bert_score.utils import bert_encode, padding

        device = next(model.parameters()).device
        out: list = [None] * len(ids)
        for batch in length_batches([len(seq) for seq in ids], self.params.batch_size, device.type == "cpu"):
            padded, lens, mask = padding([list(ids[i]) for i in batch], tokenizer.pad_token_id)
            emb = bert_encode(model, padded.to(device), attention_mask=mask.to(device))
            for row, i in enumerate(batch):
                out[i] = emb[row, : int(lens[row])]
        return out

    def _match(self, pairs: list[tuple[int, int]], embs: list, idfs: list) -> Any:
        """(P, R, F) rows for (candidate, reference) index pairs, by bert-score's greedy_cos_idf."""
        import torch
        from bert_score.utils import greedy_cos_idf

        results = []
        with torch.no_grad():
            for start in range(0, len(pairs), self.params.batch_size):
                batch = pairs[start : start + self.params.batch_size]
                # bert-score pads embeddings with 2.0 (keeps padded norms non-zero) and idf with 0.
                ref_emb, ref_mask = _pad([embs[r] for _, r in batch], 2.0)
                hyp_emb, hyp_mask = _pad([embs[c] for c, _ in batch], 2.0)
                ref_idf, _ = _pad([idfs[r] for _, r in batch])
                hyp_idf, _ = _pad([idfs[c] for c, _ in batch])
                P, R, F = greedy_cos_idf(ref_emb, ref_mask, ref_idf, hyp_emb, hyp_mask, hyp_idf)
                results.append(torch.stack((P, R, F), dim=-1).cpu())
        return torch.cat(results)

    def score_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        import torch
        from bert_score.utils import sent_encode

        tokenizer, model = self.model()
        rows = [
            [o for o in reference_options(ref, self.params.alternatives) if o.strip()]
            for ref in (references or [None] * len(completions))
        ]
        scored = [(c, opts) for c, opts in zip(completions, rows) if opts and c.strip()]
        texts: dict[str, int] = {}  # distinct text -> index into `ids`
        seqs: dict[tuple, int] = {}  # distinct token ids -> index: "Hello" and "hello" may share one encoding
        # dict.fromkeys, not a set: a fixed order gives the same batches, hence the same floats, on every run.
        for text in dict.fromkeys([c for c, _ in scored] + [o for _, opts in scored for o in opts]):
            texts[text] = seqs.setdefault(tuple(sent_encode(tokenizer, text)), len(seqs))
        pair_index = {(texts[c], texts[o]): None for c, opts in scored for o in opts}
        value: dict[tuple[int, int], float] = {}
        if pair_index:
            ids = list(seqs)
            weights = self._idf(tokenizer, [o for opts in rows for o in opts])
            device = next(model.parameters()).device
            idfs = [torch.tensor([weights[t] for t in seq], dtype=torch.float, device=device) for seq in ids]
            embs = self._embed(ids, tokenizer, model)
            # Pairs in length order so each matching batch pads little.
            pairs = sorted(pair_index, key=lambda pr: (len(ids[pr[0]]), len(ids[pr[1]])))
            preds = self._rescale(self._match(pairs, embs, idfs))
            value = dict(zip(pairs, preds[:, _COLUMN[self.params.score]].tolist()))
        out: list[float | None] = []
        for completion, opts in zip(completions, rows):
            if not opts:
                out.append(None)
            elif not completion.strip():
                out.append(0.0)
            else:
                out.append(max(value[(texts[completion], texts[o])] for o in opts))
        return out
