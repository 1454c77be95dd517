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

import unicodedata
from typing import Callable

import regex

from .hookspecs import Register, hookimpl
from .validation import Params

# Letters, numbers and combining marks: marks must stay inside words (Devanagari vowel signs, Thai tone
# marks), which Python's `\w` would split off. On ASCII this is exactly [A-Za-z0-9].
_WORD = regex.compile(r"[\p{L}\p{N}\p{M}]+")
_rouge_tokenize: Callable[[str, object], list[str]] | None = None


class _Tokenizer:
    """Tokenizers without parameters; `repr` names the class."""

    Params = Params

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def rouge_tokenize(text: str) -> list[str]:
    """rouge_score's default tokenization (no stemming), imported on first use (rouge_score pulls in nltk)."""
    global _rouge_tokenize
    if _rouge_tokenize is None:
        from rouge_score.tokenize import tokenize

        _rouge_tokenize = tokenize
    return _rouge_tokenize(text, None)


def unicode_words(text: str) -> list[str]:
    """NFKC, lowercase, then maximal runs of Unicode letters, digits and combining marks."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


class RougeDefault(_Tokenizer):
    """rouge_score's own tokenizer: lowercase, runs of [a-z0-9]; erases every other letter (Korean, é, ß).

    Example:
    >>> RougeDefault().tokenize("The cat's 2 hats! 고양이")
    ['the', 'cat', 's', '2', 'hats']
    """

    def tokenize(self, text: str) -> list[str]:
        return rouge_tokenize(text)


class UnicodeWords(_Tokenizer):
    """Unicode words: NFKC, lowercase, runs of letters/digits/combining marks; equals rouge_default on ASCII.

    Punctuation, underscores and spaces separate tokens. Scripts written without spaces (Chinese, Japanese,
    Thai) come out as one token per run; use `chars` for those.

    Example:
    >>> UnicodeWords().tokenize("고양이가 ＡＢＣ-매트에 앉았다!")
    ['고양이가', 'abc', '매트에', '앉았다']
    """

    def tokenize(self, text: str) -> list[str]:
        return unicode_words(text)


class Chars(_Tokenizer):
    """Characters: every non-whitespace character after NFKC and lowercasing (punctuation included).

    Example:
    >>> Chars().tokenize("猫が 座った。")
    ['猫', 'が', '座', 'っ', 'た', '。']
    """

    def tokenize(self, text: str) -> list[str]:
        return [ch for ch in unicodedata.normalize("NFKC", text).lower() if not ch.isspace()]


class Auto(_Tokenizer):
    """rouge_score's tokenizer on ASCII text, unicode_words otherwise (the same tokens wherever both apply).

    Example:
    >>> Auto().tokenize("The cat sat.") == RougeDefault().tokenize("The cat sat.")
    True
    >>> Auto().tokenize("고양이가 앉았다")
    ['고양이가', '앉았다']
    """

    def tokenize(self, text: str) -> list[str]:
        return rouge_tokenize(text) if text.isascii() else unicode_words(text)


@hookimpl
def register_tokenizers(register: Register) -> None:
    for name, tokenizer in {"auto": Auto, "rouge_default": RougeDefault, "unicode_words": UnicodeWords,
                            "chars": Chars}.items():
        register(name, tokenizer)
