"""Built-in tokenizers for the ROUGE rewards: rouge_score's own, Unicode words, characters, and `auto`.

A tokenizer is a picklable object with `.tokenize(text) -> list[str]`, registered through the
`register_tokenizers` hook and built with `rewardkit.get_tokenizer(name)`. Plugins add more (the Korean
plugin adds `korean_morpheme`).

Why `auto` is the default: rouge_score's tokenizer keeps only `[a-z0-9]` after lowercasing, so Korean (or
any non-ASCII word) vanishes and identical Korean strings score 0.0. `unicode_words` is built to give exactly
rouge_score's tokens on ASCII text, so `auto` can use rouge_score's own function on ASCII text (bit-identical
numbers with `rouge_score` on English) and `unicode_words` on anything else: both sides of a pair always get
the same tokenization, whichever text triggered the Unicode path.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Callable, ClassVar

import regex

from rewardkit.core.validation import Configured

# Letters, numbers and combining marks: marks must stay inside words (Devanagari vowel signs, Thai tone
# marks), which Python's `\w` would split off. On ASCII this is exactly [A-Za-z0-9].
_WORD = regex.compile(r"[\p{L}\p{N}\p{M}]+")


class Tokenizer(Configured):
    """Base of tokenizers: `.tokenize(text) -> list[str]`; parameters (none by default) validated once.

    Subclass it in a plugin, set `name` (and a `Params` model when it takes parameters), implement `tokenize`.
    """

    name: ClassVar[str] = "tokenizer"
    kind: ClassVar[str] = "tokenizer"

    def tokenize(self, text: str) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} must implement tokenize(text)")

    def __repr__(self) -> str:
        changed = self.params.model_dump(exclude_defaults=True)
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"


_Tokenizer = Tokenizer  # the name this base had before it was public


@functools.lru_cache(maxsize=1)
def _rouge_tokenizer() -> Callable[[str, object], list[str]]:
    from rouge_score.tokenize import tokenize  # rouge_score pulls in nltk: imported on first use

    return tokenize


def rouge_tokenize(text: str) -> list[str]:
    """rouge_score's default tokenization (no stemming), imported on first use (rouge_score pulls in nltk)."""
    return _rouge_tokenizer()(text, None)


def unicode_words(text: str) -> list[str]:
    """NFKC, lowercase, then maximal runs of Unicode letters, digits and combining marks."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


class RougeDefault(Tokenizer):
    """rouge_score's own tokenizer: lowercase, runs of [a-z0-9]; erases every other letter (Korean, é, ß).

    Example:
    >>> RougeDefault().tokenize("The cat's 2 hats! 고양이")
    ['the', 'cat', 's', '2', 'hats']
    """

    name = "rouge_default"

    def tokenize(self, text: str) -> list[str]:
        return rouge_tokenize(text)


class UnicodeWords(Tokenizer):
    """Unicode words: NFKC, lowercase, runs of letters/digits/combining marks; equals rouge_default on ASCII.

    Punctuation, underscores and spaces separate tokens. Scripts written without spaces (Chinese, Japanese,
    Thai) come out as one token per run; use `chars` for those.

    Example:
    >>> UnicodeWords().tokenize("고양이가 ＡＢＣ-매트에 앉았다!")
    ['고양이가', 'abc', '매트에', '앉았다']
    """

    name = "unicode_words"

    def tokenize(self, text: str) -> list[str]:
        return unicode_words(text)


class Chars(Tokenizer):
    """Characters: every non-whitespace character after NFKC and lowercasing (punctuation included).

    Example:
    >>> Chars().tokenize("猫が 座った。")
    ['猫', 'が', '座', 'っ', 'た', '。']
    """

    name = "chars"

    def tokenize(self, text: str) -> list[str]:
        return [ch for ch in unicodedata.normalize("NFKC", text).lower() if not ch.isspace()]


class Auto(Tokenizer):
    """rouge_score's tokenizer on ASCII text, unicode_words otherwise (the same tokens wherever both apply).

    Example:
    >>> Auto().tokenize("The cat sat.") == RougeDefault().tokenize("The cat sat.")
    True
    >>> Auto().tokenize("고양이가 앉았다")
    ['고양이가', '앉았다']
    """

    name = "auto"

    def tokenize(self, text: str) -> list[str]:
        return rouge_tokenize(text) if text.isascii() else unicode_words(text)
