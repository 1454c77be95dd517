"""Prompt rendering shared by every generation engine: strings as they are, chat messages through the template."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rewardkit.core.errors import ConfigError, DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def render_prompts(
    tokenizer: PreTrainedTokenizerBase, prompts: list, use_chat_template: bool | None
) -> tuple[list[str], bool]:
    """Prompt texts and whether they went through the chat template (then special tokens are in them).

    Like TRL: chat-message prompts use the template, string prompts are used as they are, unless
    `use_chat_template=True` (strings become one user turn) or False (messages refused).
    """
    has_template = bool(getattr(tokenizer, "chat_template", None))
    chat = [not isinstance(p, str) for p in prompts]
    if any(chat) and not all(chat):
        raise DataError("checkpoint_inference: the prompts mix strings and chat messages.", hint="use one kind.")
    templated = all(chat) if use_chat_template is None else use_chat_template
    if templated and not has_template:
        raise ConfigError(
            "checkpoint_inference: the prompts need a chat template but the tokenizer has none.",
            hint="set tokenizer.chat_template, or use string prompts with use_chat_template=False.",
        )
    if not templated:
        if any(chat):
            raise DataError(
                "checkpoint_inference: use_chat_template=False but the prompts are chat messages.",
                hint="use_chat_template=None, or string prompts.",
            )
        return list(prompts), False
    from jinja2.exceptions import TemplateError  # transformers' own dependency

    texts: list[str] = []
    for i, prompt in enumerate(prompts):
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        if not isinstance(messages, list):
            raise DataError(
                f"checkpoint_inference: prompt {i} is {type(prompt).__name__}.",
                hint="a string or a list of {'role', 'content'} messages.",
            )
        # tokenize=False returns the text; transformers' annotation does not narrow on it
        try:
            texts.append(cast(str, tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)))
        except TemplateError as exc:  # SecurityError included: a hostile or broken template, one line
            raise ConfigError(
                f"checkpoint_inference: the chat template failed on prompt {i}: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]}.",
                hint="fix the template (tokenizer.chat_template) or use the model's own.",
            ) from None
    return texts, True
