"""The built-in tokenizers for overlap rewards (`rewardkit.text.text_tokenizers`)."""

from __future__ import annotations

from rewardkit.core.hookspecs import Register, hookimpl
from rewardkit.text.text_tokenizers import Auto, Chars, RougeDefault, UnicodeWords


@hookimpl
def register_tokenizers(register: Register) -> None:
    for tokenizer in (Auto, RougeDefault, UnicodeWords, Chars):
        register.tokenizer(tokenizer.name, tokenizer)
