"""A trained reward model (sequence classification, one logit) as a reward: it scores prompt + completion as TRL does.

TRL's GRPOTrainer can itself call a `PreTrainedModel` reward (grpo_trainer.py `_calculate_rewards`): it builds
prompt + completion (the chat template over `prompt + completion` messages for conversational data, plain
concatenation for strings), tokenizes with `padding_side="right", add_special_tokens=False`, runs the model
under `torch.inference_mode()` and takes `logits[:, 0]`. This reward does exactly that (TRL's own
`apply_chat_template` builds the text), batched, so it also works in non-linear compositions and outside training
(`rewardkit score` / `select`). In a linear composition `Composed.to_trl_kwargs()` hands TRL the model itself
when TRL's path computes the same thing (see `RewardModel.trl_model`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

from pydantic import Field

from rewardkit.core.errors import ConfigError, DataError
from rewardkit.core.validation import ModelRef, stage_ref
from rewardkit.rewards.base import Reward, RewardParams
from rewardkit.rewards.inputs import Reference
from rewardkit.rewards.models import MODELS, length_batches, resolve_device

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

FAMILY = "reward_model"  # this module's models in the shared cache
# Keyword under which __call__ hands the original completion items (chat messages) to score_batch.
_ITEMS = "_reward_model_items"


def _load(model: str, tokenizer: str | None, device: str) -> tuple[Any, Any]:
    """(tokenizer, model) as TRL prepares a reward model: num_labels=1, pad token = eos when missing."""
    if stage_ref(model) is not None:
        raise ConfigError(
            f"reward_model: model {model!r} names a pipeline stage, which only `rewardkit train` "
            "resolves (to the rm stage's merged model).",
            hint="outside a pipeline give the folder, e.g. runs/<pipeline>/rm/merged.",
        )
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"reward_model: device {device!r} but no CUDA device is available.", hint="device: cpu (or auto)."
        )
    try:
        tok = AutoTokenizer.from_pretrained(tokenizer or model)
        net = AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        reason = " ".join(str(exc).split()).rstrip(".")[:400]
        raise ConfigError(
            f"reward_model: cannot load model {model!r}"
            f"{f' with tokenizer {tokenizer!r}' if tokenizer else ''}: {reason}.",
            hint="give a local "
            "folder holding a sequence-classification model (e.g. a `stage: rm` output's merged/), "
            "or put the hub model in the Hugging Face cache first.",
        ) from exc
    if tok.pad_token_id is None:  # what GRPOTrainer.__init__ does for reward models
        tok.pad_token = tok.eos_token
    # The model pools the last token that is not padding: it must know the tokenizer's pad id.
    net.config.get_text_config().pad_token_id = tok.pad_token_id
    return tok, net.to(device).eval()


def load_reward_model(
    model: str, tokenizer: str | None = None, device: str = "cpu"
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The (tokenizer, model) pair, loaded on first request in this process and then reused."""
    return MODELS.get((FAMILY, model, tokenizer, device), lambda: _load(model, tokenizer, device))


def clear_model_cache() -> None:
    """Forget every loaded reward model (frees its memory once no call holds it)."""
    MODELS.clear(FAMILY)


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m for m in value)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def standardize(values: list[float | None]) -> list[float | None]:
    """(x - mean) / std over the present values (population std); all zeros when std is 0.

    >>> standardize([1.0, None, 3.0])
    [-1.0, None, 1.0]
    >>> standardize([2.0, 2.0])
    [0.0, 0.0]
    """
    present = [v for v in values if v is not None]
    if not present:
        return values
    mean = math.fsum(present) / len(present)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in present) / len(present))
    return [None if v is None else (0.0 if std == 0 else (v - mean) / std) for v in values]


class RewardModel(Reward):
    """Scores prompt + completion with a trained reward model (a sequence classifier), like TRL's reward-model path.

    The text is built as TRL builds it: for conversational data the reward model's chat template over the
    prompt messages plus the completion messages (a string on the other side becomes a user / assistant turn),
    for strings `prompt + completion`. It is tokenized with right padding and no added special tokens, run
    under `torch.inference_mode()` in batches, and the score is `logits[:, 0]`, then `transform`. Identical
    texts are scored once per call; batches are sorted by length.

    The model loads on first call, once per process (shared by every `reward_model` reward with the same model,
    tokenizer and device); pickling the reward never pickles the model. `clear_model_cache()` frees it.

    Prompts are required: TRL passes them in training; `rewardkit score` / `select` pass each row's `prompt`.
    `completion_view` applies to the completion only (for chat completions: to the last assistant message);
    a completion where the view finds nothing scores per `missing`. There is no reference.

    In a linear composition, `Composed.to_trl_kwargs()` hands GRPOTrainer the model itself (with its tokenizer
    as `reward_processing_classes`), so TRL's reward-model path and its DeepSpeed/FSDP preparation apply; it does
    so only when TRL computes the same thing: transform `raw`, no completion_view, max_length or
    chat_template_kwargs, batch_size and device left unset, on_error `raise`. Otherwise this reward is passed.

    Args:
        model (`str`): local folder, hub id, or in a `rewardkit train` pipeline `"@<rm stage>"` (its merged model).
        tokenizer (`str`, *optional*): tokenizer folder or id; default the model's.
        batch_size (`int`, defaults to 16): texts per forward pass.
        device (`"auto" | "cpu" | "cuda" | "cuda:N"`, defaults to `"auto"`): auto = the current CUDA device, else CPU.
        transform (`"raw" | "sigmoid" | "standardize"`, defaults to `"raw"`): raw logit; its sigmoid; or
            standardized over the rows of the call, (x - mean) / std (population std; std 0 gives zeros). Under
            multi-process training each rank standardizes its own slice.
        max_length (`int`, *optional*): truncate each text to this many tokens (the tokenizer's
            truncation_side, usually the right: the end of a long completion is cut). TRL does not truncate.
        chat_template_kwargs (`dict`, *optional*): extra arguments of the chat template (e.g. enable_thinking).

    Example:
    >>> from rewardkit import get_reward
    >>> rm = get_reward("reward_model", model="runs/tutorial-pipeline/rm/merged", transform="sigmoid")
    >>> rm(prompts=["What is 2+2? "], completions=["4"])  # doctest: +SKIP
    [0.73...]
    """

    name = "reward_model"

    class Params(RewardParams):
        model: Annotated[str, ModelRef("model", tiny="rm")] = Field(
            min_length=1, description="Local folder, hub id, or '@<rm stage>' in a pipeline."
        )
        tokenizer: Annotated[Optional[str], ModelRef("tokenizer")] = Field(
            None, min_length=1, description="Tokenizer folder or id (default: the model's)."
        )
        batch_size: int = Field(16, ge=1, description="Texts per forward pass.")
        device: str = Field(
            "auto",
            pattern=r"^(auto|cpu|cuda(:\d+)?)$",
            description="auto | cpu | cuda | cuda:N (auto: the current CUDA device, else CPU).",
        )
        transform: Literal["raw", "sigmoid", "standardize"] = Field(
            "raw", description="raw logit, its sigmoid, or standardized over the call's rows."
        )
        max_length: int | None = Field(None, ge=1, description="Truncate each text to this many tokens.")
        chat_template_kwargs: dict[str, Any] | None = Field(None, description="Extra chat-template arguments.")

    def __init__(self, params: RewardParams | None = None, /, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        p = self.params
        for field, why in (
            ("reference", "a reward model scores prompt + completion, not against a gold text"),
            ("reference_view", "a reward model has no reference"),
            ("timeout", "a worker process would load a second copy of the model"),
        ):
            if getattr(p, field) is not None:
                raise ConfigError(
                    f"reward {self.name!r}: parameter {field!r} is not supported: {why}.", hint=f"remove {field}."
                )

    @property
    def device(self) -> str:
        """`device`, with auto = the current CUDA device (each rank has its own), else CPU."""
        return resolve_device(self.params.device)

    def merges_calls(self) -> bool:
        """A row's score is its own logit, except under `standardize` (over the call's rows)."""
        return self.params.transform != "standardize"

    def model(self) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
        """(tokenizer, model) from the process-wide cache."""
        return load_reward_model(self.params.model, self.params.tokenizer, self.device)

    @property
    def trl_native(self) -> bool:
        """Whether TRL's own reward-model path computes exactly what these parameters ask for."""
        p = self.params
        return (
            p.transform == "raw"
            and p.completion_view is None
            and p.max_length is None
            and p.chat_template_kwargs is None
            and p.on_error == "raise"
            and p.device == "auto"
            and "batch_size" not in p.model_fields_set
        )

    def trl_model(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase] | None:
        """(model, tokenizer) for GRPOTrainer's `reward_funcs` / `reward_processing_classes`, or None.

        None when `trl_native` is False (the reward itself must then be passed). The model is a fresh copy on
        CPU, owned by the trainer (which moves and wraps it); its `_name_or_path` is set to this reward's name,
        which is what TRL logs it under (`rewards/<name>/mean`), like any other component.
        """
        if not self.trl_native:
            return None
        tokenizer, model = _load(self.params.model, self.params.tokenizer, "cpu")
        model.config._name_or_path = self.__name__
        return model, tokenizer

    def __call__(
        self,
        prompts: list | None = None,
        completions: list | None = None,
        completion_ids: list | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        if isinstance(completions, (list, tuple)):
            self._check_prompts(prompts, len(completions))
            self.model()  # a load error stops here once, not once per row in the on_error fallback
            kwargs[_ITEMS] = list(completions)
        return super().__call__(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)

    def _check_prompts(self, prompts: Any, n: int) -> None:
        hint = (
            "add a 'prompt' field to each row (rewardkit score and select pass it as prompts=), or call "
            "the reward as TRL does: reward(prompts=[...], completions=[...])."
        )
        if prompts is None or (isinstance(prompts, (list, tuple)) and n and all(p is None for p in prompts)):
            raise DataError(
                f"reward_model {self.__name__!r} needs prompts: it scores prompt + completion, as TRL "
                f"does, and got none.",
                hint=hint,
            )
        if not isinstance(prompts, (list, tuple)) or len(prompts) != n:
            got = len(prompts) if isinstance(prompts, (list, tuple)) else type(prompts).__name__
            raise DataError(
                f"reward_model {self.__name__!r}: prompts has {got} items for {n} completions.",
                hint="pass one prompt per completion (TRL repeats each prompt per generation).",
            )
        bad = [i for i, p in enumerate(prompts) if not (isinstance(p, str) or _is_messages(p))]
        if bad:
            what = "missing" if prompts[bad[0]] is None else f"a {type(prompts[bad[0]]).__name__}"
            raise DataError(
                f"reward_model {self.__name__!r} needs prompts, but prompt {bad[0]} is {what} "
                f"({len(bad)} of {n} rows: {bad[:10]}); a prompt is a string or a list of chat "
                f"messages.",
                hint=hint,
            )

    def _messages(self, item: Any, text: str) -> list[dict]:
        """The completion as messages; with a completion_view, the last assistant message holds the view's text."""
        if isinstance(item, str):
            return [{"role": "assistant", "content": text}]
        messages = [item] if isinstance(item, dict) else list(item)
        if self._completion_view is not None:
            last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages) - 1)
            messages[last] = {**messages[last], "content": text}
        return messages

    def text(self, prompt: Any, item: Any, part: str, tokenizer: PreTrainedTokenizerBase) -> str:
        """The string TRL scores for one row (`part`: the completion's text after the completion_view)."""
        if not (_is_messages(prompt) or _is_messages(item) or isinstance(item, dict)):
            return prompt + part
        from trl.data_utils import apply_chat_template

        turns = prompt if _is_messages(prompt) else [{"role": "user", "content": prompt}]
        example = {"messages": turns + self._messages(item, part)}
        return apply_chat_template(example, tokenizer, **(self.params.chat_template_kwargs or {}))["text"]

    def score_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        import torch

        tokenizer, model = self.model()
        items = context.get(_ITEMS) or completions
        texts = [self.text(p, item, part, tokenizer) for p, item, part in zip(context["prompts"], items, completions)]
        distinct = list(dict.fromkeys(t for t in texts if t))  # fixed order: same batches, same floats
        limit = {"truncation": True, "max_length": self.params.max_length} if self.params.max_length else {}
        device = next(model.parameters()).device
        value: dict[str, float] = {}
        for batch in length_batches([len(t) for t in distinct], self.params.batch_size, device.type == "cpu"):
            chunk = [distinct[i] for i in batch]
            inputs = tokenizer(
                text=chunk, return_tensors="pt", padding=True, padding_side="right", add_special_tokens=False, **limit
            ).to(device)
            with torch.inference_mode():
                logits = model(**inputs).logits[:, 0]
            value.update(zip(chunk, logits.float().cpu().tolist()))
        return [value[t] if t else None for t in texts]  # an empty text has nothing to score

    def _after_scoring(self, scores: list[float | None]) -> list[float | None]:
        if self.params.transform == "sigmoid":
            return [None if s is None else _sigmoid(s) for s in scores]
        if self.params.transform == "standardize":
            return standardize(scores)
        return scores
