"""ROUGE-1 between the completion and the reference, computed by `rouge_score` with a selectable tokenizer."""

from __future__ import annotations

import warnings
from typing import Any, Literal

from pydantic import Field

from rewardkit.core.errors import ConfigError
from rewardkit.core.validation import TokenizerSpec
from rewardkit.rewards.base import Reference, Reward, RewardParams, reference_options

# rouge_score's Score field for each `score` choice.
MEASURES = {"f": "fmeasure", "precision": "precision", "recall": "recall"}


class _MemoTokenizer:
    """Tokenizes each distinct text once per batch: in GRPO every reference repeats G times."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.cache: dict[str, list[str]] = {}

    def tokenize(self, text: str) -> list[str]:
        tokens = self.cache.get(text)
        if tokens is None:
            tokens = self.cache[text] = self.tokenizer.tokenize(text)
        return tokens


class Rouge1(Reward):
    """ROUGE-1 (unigram overlap) precision, recall or F between the completion and the reference.

    Computed by `rouge_score.rouge_scorer.RougeScorer(["rouge1"], tokenizer=...)`, so with the same tokens the
    numbers are bit-identical to rouge_score's. The default tokenizer `auto` uses rouge_score's own tokenizer
    on ASCII text and `unicode_words` otherwise (the two agree on ASCII), so non-English text never silently
    scores 0: identical Korean strings score 1.0. `rewardkit list` shows the registered tokenizers
    (`korean_morpheme` comes with rewardkit-korean and reproduces the 2025 Korean grammar-QA competition).

    Several golds (a list column, or `alternatives`) give the best score over them. Empty cases:
    a completion without tokens scores 0.0 (rouge_score's answer); a reference without tokens (empty, or
    erased by the tokenizer) scores None, since there is nothing to compare with. A tokenizer that erases text
    holding letters or digits triggers one warning per reward instance.

    Args:
        reference (`str`, defaults to `"answer"`): dataset column with the gold text (or a list of golds).
        score (`"f" | "precision" | "recall"`, defaults to `"f"`): which ROUGE-1 measure to return.
            Precision divides the overlap by the completion's unigrams, recall by the reference's.
        tokenizer (`str`, defaults to `"auto"`): registered tokenizer name: `auto`, `rouge_default`,
            `unicode_words`, `chars`, or one a plugin adds (e.g. `korean_morpheme`).
        alternatives (`str`, *optional*): separator splitting one gold into alternatives, e.g. `"#"`.

    Example:
    >>> from rewardkit import get_reward
    >>> reward = get_reward("rouge1")
    >>> reward(completions=["the cat sat", "고양이가 앉았다", ""], answer=["the cat sat down", "고양이가 앉았다", "x"])
    [0.8571428571428571, 1.0, 0.0]
    """

    name = "rouge1"
    needs_reference = True

    class Params(RewardParams):
        reference: str | None = "answer"
        score: Literal["f", "precision", "recall"] = "f"
        tokenizer: TokenizerSpec = Field("auto", description="Registered tokenizer name (or {tokenizer: name, ...}).")
        alternatives: str | None = Field(None, min_length=1)

    def __init__(self, params: RewardParams | None = None, /, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        self._tokenizer = self.params.tokenizer
        if not callable(getattr(self._tokenizer, "tokenize", None)):  # built by the registry, never here
            raise ConfigError(
                f"reward {self.name!r}: tokenizer: {self._tokenizer!r:.60} has no tokenize(text) method.",
                hint="build rewards with rewardkit.get_reward(...), which builds their "
                "tokenizer, or pass rewardkit.get_tokenizer(name).",
            )
        self._measure = MEASURES[self.params.score]
        self._scorer: Any = None
        self._memo: _MemoTokenizer | None = None
        self._warned = False

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_scorer"] = state["_memo"] = None  # rebuilt on first use; keeps rouge_score out of the pickle
        return state

    def _tokens(self, text: str) -> list[str]:
        assert self._memo is not None  # built by score_batch before any text is tokenized
        tokens = self._memo.tokenize(text)
        if not tokens and not self._warned and any(ch.isalnum() for ch in text):
            self._warned = True
            warnings.warn(
                f"Reward {self.__name__!r}: tokenizer {self._tokenizer!r} produced no tokens from "
                f"{text[:60]!r}, which has letters or digits; such a completion scores 0.0 and such a "
                "reference None. Hint: use tokenizer='auto' (the default) or 'unicode_words' for "
                "non-English text. Warned once.",
                UserWarning,
                stacklevel=2,
            )
        return tokens

    def score_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        if self._scorer is None:
            from rouge_score.rouge_scorer import RougeScorer  # lazy: imports nltk

            self._memo = _MemoTokenizer(self._tokenizer)
            self._scorer = RougeScorer(["rouge1"], tokenizer=self._memo)
        scorer, measure, sep = self._scorer, self._measure, self.params.alternatives
        out: list[float | None] = []
        try:
            for completion, reference in zip(completions, references or [None] * len(completions)):
                options = [o for o in reference_options(reference, sep) if self._tokens(o)]
                if not options:
                    out.append(None)
                    continue
                self._tokens(completion)  # for the erased-text warning only
                out.append(max(getattr(scorer.score(o, completion)["rouge1"], measure) for o in options))
        finally:
            if self._memo is not None:
                self._memo.cache.clear()  # the memo lives for one batch: bounded memory over a training run
        return out
