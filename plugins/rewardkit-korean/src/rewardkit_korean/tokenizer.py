"""The `korean_morpheme` ROUGE tokenizer: the official preprocessing, then Mecab morphemes.

rouge_score's default tokenizer drops everything outside [a-z0-9], so Korean scores 0.0 even for identical
strings; passing this object as `RougeScorer(..., tokenizer=...)` reproduces the competition's ROUGE-1.
"""

from __future__ import annotations

import warnings
from typing import Any

from rewardkit import Tokenizer

# Mecab's time grows with the square of one call's length (160k characters took 5 s, 400k did not finish in
# minutes); competition reasons are a few hundred characters. Longer text is cut, at a space, before Mecab.
MAX_ANALYSED_CHARS = 10_000


def preprocess(text: str) -> str:
    """The official rule, in its order: lowercase, characters outside [A-Za-z0-9가-힣] → spaces, strip.

    >>> preprocess("'왠지'는 A급!")
    '왠지 는 a급'
    """
    # lower() first: some characters only enter the allowed set once lowercased (KELVIN SIGN → 'k'), and
    # some lowercase to several characters ('İ' → 'i' + a combining dot that becomes a space).
    lowered = text.lower()
    # A comprehension over chars instead of re.sub keeps the rule visible and needs no regex engine.
    replaced = "".join(
        ch if ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or "가" <= ch <= "힣") else " "
        for ch in lowered
    )
    # strip() matters: Mecab segments differently after a leading space (' 입니다' → 입 / 니다), and most
    # reasons start with a quote that has just become a space.
    return replaced.strip()


class KoreanMorphemeTokenizer(Tokenizer):
    """Official ROUGE preprocessing followed by python-mecab-ko morphemes (bundled dictionary).

    Only the first MAX_ANALYSED_CHARS characters of a text (cut at a space) reach Mecab, with a warning.

    >>> KoreanMorphemeTokenizer().tokenize("'왠지'는 '왜인지'가 줄어든 말이다.")
    ['왠지', '는', '왜', '인지', '가', '줄어든', '말', '이', '다']
    """

    name = "korean_morpheme"

    def __init__(self, params: Any = None, /, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._mecab: Any = None

    def _tagger(self) -> Any:
        if self._mecab is None:
            try:
                import mecab  # lazy: importing the plugin must stay cheap
            except ImportError as exc:
                raise ImportError(
                    "The korean_morpheme tokenizer needs python-mecab-ko. "
                    "Hint: pip install python-mecab-ko (it bundles its dictionary)."
                ) from exc
            self._mecab = mecab.MeCab()
        return self._mecab

    def tokenize(self, text: str) -> list[str]:
        """Return the morphemes of `text` after the official preprocessing."""
        cleaned = preprocess(text)
        if not cleaned:
            return []
        if len(cleaned) > MAX_ANALYSED_CHARS:
            cut = cleaned.rfind(" ", 0, MAX_ANALYSED_CHARS + 1)
            cleaned = cleaned[: cut if cut > 0 else MAX_ANALYSED_CHARS].rstrip()
            warnings.warn(
                f"korean_morpheme: a text longer than {MAX_ANALYSED_CHARS} characters is cut to its first "
                f"{MAX_ANALYSED_CHARS} (at a space) before Mecab, whose time grows with the square of the length; "
                "its ROUGE-1 counts that part only.",
                UserWarning,
                stacklevel=2,
            )
        return list(self._tagger().morphs(cleaned))

    def __getstate__(self) -> dict:
        # The MeCab tagger wraps a C object that cannot be pickled; it is rebuilt on first use.
        return {**self.__dict__, "_mecab": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return "KoreanMorphemeTokenizer()"
