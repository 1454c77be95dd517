"""`checkpoint_inference`: generate answers for a validation set with the live model at each save/evaluation.

Output, one file per step, written atomically by the main process to `<args.output_dir>/<sidecar>/step_{N}.json`
(the format is `rewardkit.inference_files`'s):

    {"step": N, "epoch": 1.5, "records": [{"id": ..., "prompt": ..., "output": "...", <reference/extra columns>}]}

`prompt` is the prompt as given (string or chat messages), `output` the decoded completion (special tokens
skipped). Records keep the dataset order.
"""

from __future__ import annotations

import copy
import os
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import transformers
from transformers import TrainerCallback

from ..distributed import process_info
from ..errors import ConfigError, DataError
from ..fileio import dumps_strict
from ..inference_files import (
    AUTO_FIELDS,
    RECORD_KEYS,
    make_record,
    read_rows,
    step_file_name,
    step_files,
    write_step_file,
)
from ..validation import duplicates
from .common import build_params, check_dirs, logger, refuse_sharded, sidecar_dir
from .params import CheckpointInferenceParams

# Copied columns may not take these names: readers take "completion" as the generated text when present.
_RESERVED = tuple(dict.fromkeys((*RECORD_KEYS, *AUTO_FIELDS)))
# generate()'s KV-cache argument: transformers 5.24 renamed `past_key_values` to `cache` (the old name warns and
# goes away later); 5.23 and older refuse `cache` ("model_kwargs are not used"), measured with 5.23.0.
_CACHE_KWARG = "cache" if tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (5, 24) \
    else "past_key_values"


class InferenceListener(Protocol):
    """What `CheckpointInferenceCallback.subscribe` accepts (best_checkpoint is one)."""

    def inference_ready(self, args: Any, state: Any, path: Path, records: list[dict],
                        metrics: dict | None) -> None: ...


def load_rows(dataset: str | list[dict]) -> list[dict]:
    """Validation rows from a JSON list / JSONL path (or a step file) or an in-memory list."""
    if isinstance(dataset, list):
        rows, where = dataset, "dataset"
    else:
        if Path(dataset).is_dir():  # fileio would say "unknown file type" or "does not exist" for a folder
            raise DataError(f"checkpoint_inference: dataset {dataset!r} is a directory, not a file. Hint: pass "
                            "the JSON list or JSONL file inside it (e.g. val.jsonl).")
        rows, where = read_rows(dataset), str(dataset)
    if not rows:  # objects only: read_rows and the params model (list[dict]) checked that
        raise DataError(f"{where}: expected a non-empty list of objects (one per validation row). Hint: a JSON "
                        'list or JSONL of {"id": ..., "prompt": ..., "answer": ...}.')
    return rows


def can_generate(model: Any) -> bool:
    """Whether `model.generate` can produce text (False for sequence-classification models)."""
    check = getattr(model, "can_generate", None)
    return bool(check()) if callable(check) else hasattr(model, "generate")


def render_prompts(tokenizer: Any, prompts: list, use_chat_template: bool | None) -> tuple[list[str], bool]:
    """Prompt texts and whether they went through the chat template (then special tokens are in them).

    Like TRL: chat-message prompts use the template, string prompts are used as they are, unless
    `use_chat_template=True` (strings become one user turn) or False (messages refused).
    """
    has_template = bool(getattr(tokenizer, "chat_template", None))
    chat = [not isinstance(p, str) for p in prompts]
    if any(chat) and not all(chat):
        raise DataError("checkpoint_inference: the prompts mix strings and chat messages. Hint: use one kind.")
    templated = all(chat) if use_chat_template is None else use_chat_template
    if templated and not has_template:
        raise ConfigError("checkpoint_inference: the prompts need a chat template but the tokenizer has none. "
                          "Hint: set tokenizer.chat_template, or use string prompts with use_chat_template=False.")
    if not templated:
        if any(chat):
            raise DataError("checkpoint_inference: use_chat_template=False but the prompts are chat messages. "
                            "Hint: use_chat_template=None, or string prompts.")
        return list(prompts), False
    texts = []
    for i, prompt in enumerate(prompts):
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        if not isinstance(messages, list):
            raise DataError(f"checkpoint_inference: prompt {i} is {type(prompt).__name__}. Hint: a string or a "
                            "list of {'role', 'content'} messages.")
        texts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return texts, True


@contextmanager
def generation_mode(model: Any, tokenizer: Any) -> Iterator[None]:
    """Eval mode, no activation checkpointing, left padding; every flag restored exactly afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    # Toggle the per-layer flags instead of *_disable()/*_enable(): re-enabling could not restore the
    # checkpointing function or every_n_layers the trainer chose.
    ckpt = [(m, m.gradient_checkpointing) for m in model.modules()
            if isinstance(getattr(m, "gradient_checkpointing", None), bool)]
    side, pad = tokenizer.padding_side, tokenizer.pad_token
    try:
        model.eval()  # LoRA dropout would otherwise change greedy outputs
        for m, _ in ckpt:
            m.gradient_checkpointing = False
        tokenizer.padding_side = "left"  # decoder-only: the completion must start right after the prompt
        if pad is None:
            tokenizer.pad_token = tokenizer.eos_token
        yield
    finally:
        for m, training in modes:
            m.training = training
        for m, flag in ckpt:
            m.gradient_checkpointing = flag
        tokenizer.padding_side = side
        if pad is None:
            tokenizer.pad_token = None


def generation_config(model: Any, tokenizer: Any, max_new_tokens: int, overrides: dict) -> Any:
    """The model's generation config made greedy (unless overridden), one sequence per prompt."""
    from transformers import GenerationConfig

    base = getattr(model, "generation_config", None)
    config = copy.deepcopy(base) if base is not None else GenerationConfig()
    # Greedy: sampling would make the checkpoint ranking noisy. Clear sampling knobs so no warning fires.
    config.update(do_sample=False, temperature=None, top_p=None, top_k=None, num_beams=1, use_cache=True,
                  max_new_tokens=max_new_tokens)
    config.update(**overrides)
    config.num_return_sequences = 1
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    return config


MIN_SHARED_PREFIX = 8  # tokens; below this the extra forward pass is not worth it


def shared_prefix_length(ids: list[list[int]]) -> int:
    """Tokens every sequence starts with, leaving each at least one token of its own.

    >>> shared_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]])
    2
    """
    if len(ids) < 2:
        return 0
    limit = min(len(seq) for seq in ids) - 1
    n = 0
    while n < limit and all(seq[n] == ids[0][n] for seq in ids):
        n += 1
    return n


def _prefix_cache(model: Any, prefix: list[int], device: Any, config: Any) -> Any:
    """The KV cache of `prefix` (batch of one), or None where it cannot be reused for a batch."""
    import torch

    if len(prefix) < MIN_SHARED_PREFIX or config.num_beams != 1:
        return None
    with torch.no_grad():
        cache = model(input_ids=torch.tensor([prefix], device=device), use_cache=True).past_key_values
    return cache if callable(getattr(cache, "batch_repeat_interleave", None)) else None


def generate_texts(model: Any, tokenizer: Any, prompts: list, *, batch_size: int = 16, max_new_tokens: int = 128,
                   generation_kwargs: dict | None = None, use_chat_template: bool | None = None,
                   share_prefix: bool = True, progress: Callable[[int], Any] | None = None) -> list[str]:
    """Batched, left-padded generation (greedy unless generation_kwargs say otherwise) with the given (live)
    model; completions cut at the input width.

    With `share_prefix`, the tokens all prompts start with (system prompt, instructions) are encoded once and
    their KV cache is copied into every batch: rows are laid out as [prefix][padding][own tokens], the
    attention mask hides the padding and positions follow the mask, so outputs equal unshared generation up to
    float rounding. `progress`, if given, is called with the number of prompts each finished batch held.
    """
    if not prompts:  # a rank whose shard is empty: nothing to render (and no chat-template check to fail)
        return []

    import torch

    texts, templated = render_prompts(tokenizer, prompts, use_chat_template)
    device = getattr(model, "device", None) or next(model.parameters()).device
    ids = tokenizer(texts, add_special_tokens=not templated)["input_ids"]
    shared = shared_prefix_length(ids) if share_prefix else 0
    # Batch prompts of similar length (longest first): less left padding means less wasted compute.
    order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
    outputs: list[str] = [""] * len(texts)
    with generation_mode(model, tokenizer):
        config = generation_config(model, tokenizer, max_new_tokens, generation_kwargs or {})
        cache = _prefix_cache(model, ids[0][:shared], device, config) if shared else None
        prefix = ids[0][:shared] if cache is not None else []
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            own = [ids[i][len(prefix):] for i in rows]
            width = max(len(seq) for seq in own)
            input_ids = torch.tensor([prefix + [tokenizer.pad_token_id] * (width - len(seq)) + seq for seq in own],
                                     device=device)
            mask = torch.tensor([[1] * len(prefix) + [0] * (width - len(seq)) + [1] * len(seq) for seq in own],
                                device=device)
            extra = {}
            if cache is not None:
                extra[_CACHE_KWARG] = copy.deepcopy(cache)  # generate() extends the cache it is given
                extra[_CACHE_KWARG].batch_repeat_interleave(len(rows))
            with torch.no_grad():
                out = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config, **extra)
            for i, text in zip(rows, tokenizer.batch_decode(out[:, input_ids.shape[1]:], skip_special_tokens=True)):
                outputs[i] = text
            if progress is not None:
                progress(len(rows))
    return outputs


class CheckpointInferenceCallback(TrainerCallback):
    """Generate the validation set with the live model on each evaluation/save into <sidecar>/step_N.json.

    No reload and no copy: the trainer's model generates (greedy, batched, left padding), and its train/eval
    mode, activation checkpointing and the tokenizer's padding side are restored. Under several processes
    the prompts are split across ranks and gathered; only the main process writes. FSDP / ZeRO-3 are refused
    (all ranks would have to generate together). A sequence-classification model (RewardTrainer) is refused
    at train begin. See the module docstring for the file format.

    Partner link: `subscribe(listener)` hands each step's records to the listener (a best_checkpoint of the
    same sidecar) right after the file is written, at evaluate with the eval metrics. The listener uses
    `generates_at(event, step)` and `last_step` to know whether records are still coming, so the two work in
    either order in the callbacks list. `rewardkit.callbacks.link_callbacks(callbacks)` makes these links
    (`rewardkit train` calls it).

    Example:
    >>> val = [{"id": "q1", "prompt": "2+2=", "answer": "4"}]  # or a path: dataset="val.jsonl"
    >>> cb = CheckpointInferenceCallback(dataset=val, reference_columns=["answer"], max_new_tokens=64)
    >>> cb.generates_at("evaluate", 10), cb.generates_at("save", 10)
    (True, False)
    """

    Params = CheckpointInferenceParams

    takes_validated_params = True  # the builder hands over the validated CheckpointInferenceParams

    def __init__(self, params: CheckpointInferenceParams | None = None, /, **kwargs: object) -> None:
        self.params = p = build_params(CheckpointInferenceParams, params, kwargs, "checkpoint_inference")
        clash = [c for c in p.reference_columns + p.extra_columns if c in _RESERVED]
        if clash:
            raise ConfigError(f"callback 'checkpoint_inference': columns {clash} clash with the record fields "
                              f"{list(_RESERVED)} ('completion' would be read as the generated text). Hint: "
                              "rename them in the dataset.")
        if p.generation_kwargs.get("num_return_sequences", 1) != 1:
            raise ConfigError("callback 'checkpoint_inference': generation_kwargs.num_return_sequences must be 1. "
                              "Hint: one output per prompt is scored.")
        check_dirs(p, "checkpoint_inference", relative_only=("sidecar",))  # now rather than at the first save
        self.rows = load_rows(p.dataset)
        self._check_rows()
        self.last_step: int | None = None  # global step of the last generation (every rank)
        self.listeners: list[InferenceListener] = []
        self._model_ref: Any = None
        self.args: Any = None
        self.written: list[Path] = []

    def subscribe(self, listener: InferenceListener) -> None:
        """Call `listener.inference_ready(args, state, path, records, metrics)` after each generation."""
        if not any(existing is listener for existing in self.listeners):
            self.listeners.append(listener)

    def generates_at(self, event: str, step: int) -> bool:
        """Whether this callback (still) generates at `event` ('evaluate' | 'save') of global step `step`."""
        if self.params.on not in (event, "both"):
            return False
        return event == "evaluate" or self.last_step != step  # a save after an evaluate of the same step reuses it

    def _check_rows(self) -> None:
        p = self.params
        for i, row in enumerate(self.rows):
            missing = [c for c in [p.prompt_column, *p.reference_columns, *p.extra_columns] if c not in row]
            if missing:
                raise DataError(f"checkpoint_inference dataset row {i}: missing columns {missing} (has "
                                f"{sorted(row)}). Hint: fix the dataset or the *_column parameters.")
        ids = [str(self._row_id(i)) for i in range(len(self.rows))]
        dups = duplicates(ids)
        if dups:
            raise DataError(f"checkpoint_inference dataset: duplicate ids {dups[:10]} in column "
                            f"{p.id_column!r}. Hint: ids must be unique to join references later.")
        try:  # strict, as the step files are written: a NaN column would otherwise fail at the first save
            dumps_strict([self._record(i, "") for i in range(len(self.rows))])
        except (TypeError, ValueError) as exc:
            raise DataError(f"checkpoint_inference dataset: records must be JSON-serializable ({exc}). Hint: "
                            "convert the offending columns to strings or numbers.") from None

    def _row_id(self, i: int) -> Any:
        return self.rows[i].get(self.params.id_column, i)

    def _record(self, i: int, output: str) -> dict:
        row, p = self.rows[i], self.params
        return make_record(self._row_id(i), row[p.prompt_column], output,
                           {c: row[c] for c in [*p.reference_columns, *p.extra_columns]})

    @property
    def last_model(self) -> Any:
        """The model object the last generation used (a weak reference; for checks that nothing was copied)."""
        return self._model_ref() if self._model_ref is not None else None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.args = args
        refuse_sharded(args, "checkpoint_inference", "run inference after training on the saved adapters, "
                       "then `rewardkit select` the inference folder.")
        if model is not None and not can_generate(model):
            raise ConfigError(f"callback 'checkpoint_inference': {type(model).__name__} cannot generate text "
                              "(RewardTrainer trains a sequence-classification model). Hint: remove "
                              "checkpoint_inference and best_checkpoint from reward-model runs and pick the best "
                              "checkpoint with metric_for_best_model (e.g. 'eval_accuracy').")
        if state.is_world_process_zero:
            self._set_aside_stale(args, state.global_step)

    def _set_aside_stale(self, args: Any, step: int) -> None:
        """Move files of steps after the (resumed) step to stale/: they belong to an abandoned run."""
        folder = sidecar_dir(args, self.params.sidecar)
        stale = [path for s, path in step_files(folder).items() if s > step]
        if stale:
            (folder / "stale").mkdir(exist_ok=True)
            for path in stale:
                os.replace(path, folder / "stale" / path.name)
            logger.warning("checkpoint_inference: moved %d inference files of steps after %d to %s (from a run "
                           "that continued past the resumed checkpoint).", len(stale), step, folder / "stale")

    def on_evaluate(self, args, state, control, model=None, processing_class=None, metrics=None, **kwargs):
        if self.params.on in ("evaluate", "both"):
            self._run(args, state, model, processing_class, metrics)

    def on_save(self, args, state, control, model=None, processing_class=None, **kwargs):
        if self.generates_at("save", state.global_step):
            self._run(args, state, model, processing_class, None)

    def _run(self, args: Any, state: Any, model: Any, processing_class: Any, metrics: dict | None) -> None:
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        if model is None or tokenizer is None:
            raise ConfigError("callback 'checkpoint_inference' got no model or processing_class from the trainer. "
                              "Hint: pass processing_class= (the tokenizer) to the trainer.")
        p, started = self.params, time.perf_counter()
        index, count = process_info()
        n = len(self.rows)
        mine = list(range(index * n // count, (index + 1) * n // count))  # contiguous shard of this rank
        outputs = generate_texts(model, tokenizer, [self.rows[i][p.prompt_column] for i in mine],
                                 batch_size=p.batch_size, max_new_tokens=p.max_new_tokens,
                                 generation_kwargs=p.generation_kwargs, use_chat_template=p.use_chat_template,
                                 share_prefix=p.share_prompt_prefix)
        pairs = list(zip(mine, outputs))
        if count > 1:
            from accelerate.utils import gather_object

            pairs = gather_object(pairs)
        by_index = dict(pairs)
        records = [self._record(i, by_index[i]) for i in range(n)]
        folder = sidecar_dir(args, p.sidecar)
        if state.is_world_process_zero:
            path = write_step_file(folder, state.global_step, state.epoch, records)
            self.written.append(path)
            logger.info("checkpoint_inference: step %d, %d prompts in %.1fs -> %s", state.global_step, n,
                        time.perf_counter() - started, path)
        self.last_step = state.global_step
        self._model_ref = weakref.ref(model)
        for listener in list(self.listeners):  # every rank: a listener's scoring broadcasts from rank 0
            listener.inference_ready(args, state, folder / step_file_name(state.global_step), records, metrics)
