"""`checkpoint_inference`: generate answers for a validation set with the live model at each save/evaluation.

Output, one file per step, written atomically by the main process to `<args.output_dir>/<sidecar>/step_{N}.json`
(the format is `rewardkit.selection.inference_files`'s):

    {"step": N, "epoch": 1.5, "records": [{"id": ..., "prompt": ..., "output": "...", <reference/extra columns>}]}

`prompt` is the prompt as given (string or chat messages), `output` the decoded completion (special tokens
skipped). Records keep the dataset order.
"""

from __future__ import annotations

import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from transformers import TrainerCallback

from rewardkit.callbacks.common import build_params, check_dirs, logger, output_dir, sidecar_dir
from rewardkit.callbacks.params import CheckpointInferenceParams
from rewardkit.callbacks.sharded import rank_share, sharded_training
from rewardkit.core.distributed import process_info
from rewardkit.core.errors import ConfigError, DataError
from rewardkit.core.fileio import dumps_strict
from rewardkit.core.validation import duplicates
from rewardkit.core.written import move_recorded

# The generation engine lives in rewardkit.engines; its names stay importable from here.
from rewardkit.engines.hf import can_generate, generate_texts
from rewardkit.engines.prompts import render_prompts  # noqa: F401
from rewardkit.selection.inference_files import (
    AUTO_FIELDS,
    RECORD_KEYS,
    make_record,
    read_rows,
    step_file_name,
    step_files,
    write_step_file,
)

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments

# Copied columns may not take these names: readers take "completion" as the generated text when present.
_RESERVED = tuple(dict.fromkeys((*RECORD_KEYS, *AUTO_FIELDS)))


class InferenceListener(Protocol):
    """What `CheckpointInferenceCallback.subscribe` accepts (best_checkpoint is one)."""

    def inference_ready(
        self,
        args: TrainingArguments,
        state: TrainerState,
        path: Path,
        records: list[dict[str, Any]],
        metrics: dict[str, float] | None,
    ) -> None: ...


class InferenceWatcher(Protocol):
    """What `CheckpointInferenceCallback.watch` accepts: told when a generation starts, after each batch and at
    the end (`rewardkit train` prints a line for a piped log: nothing is silent for minutes)."""

    def __call__(self, event: str, step: int, done: int, total: int, seconds: float, path: Path | None) -> None: ...


def load_rows(dataset: str | list[dict]) -> list[dict]:
    """Validation rows from a JSON list / JSONL path (or a step file) or an in-memory list."""
    if isinstance(dataset, list):
        rows, where = dataset, "dataset"
    else:
        if Path(dataset).is_dir():  # fileio would say "unknown file type" or "does not exist" for a folder
            raise DataError(
                f"checkpoint_inference: dataset {dataset!r} is a directory, not a file.",
                hint="pass the JSON list or JSONL file inside it (e.g. val.jsonl).",
            )
        rows, where = read_rows(dataset), str(dataset)
    if not rows:  # objects only: read_rows and the params model (list[dict]) checked that
        raise DataError(
            f"{where}: expected a non-empty list of objects (one per validation row).",
            hint='a JSON list or JSONL of {"id": ..., "prompt": ..., "answer": ...}.',
        )
    return rows


class CheckpointInferenceCallback(TrainerCallback):
    """Generate the validation set with the live model on each evaluation/save into <sidecar>/step_N.json.

    No reload and no copy: the trainer's model generates (greedy, batched, left padding), and its train/eval
    mode, activation checkpointing and the tokenizer's padding side are restored. Under several processes
    the prompts are split across ranks and gathered; only the main process writes. Under FSDP / ZeRO-3 every
    rank generates a shard of one size in the same number of generate calls with synced_gpus=True. With
    `engine="vllm"` the live adapter is saved and a vLLM engine generates (see `live_vllm`). A
    sequence-classification model (RewardTrainer) is refused at train begin. See the module docstring for the file format.

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
            raise ConfigError(
                f"callback 'checkpoint_inference': columns {clash} clash with the record fields "
                f"{list(_RESERVED)} ('completion' would be read as the generated text).",
                hint="rename them in the dataset.",
            )
        if p.generation_kwargs.get("num_return_sequences", 1) != 1:
            raise ConfigError(
                "callback 'checkpoint_inference': generation_kwargs.num_return_sequences must be 1.",
                hint="one output per prompt is scored.",
            )
        if p.engine == "vllm":
            from rewardkit.engines.vllm_engine import SAMPLING_KEYS

            unknown = [k for k in p.generation_kwargs if k not in SAMPLING_KEYS]
            if unknown:
                raise ConfigError(
                    f"callback 'checkpoint_inference': generation_kwargs {unknown} are not supported by "
                    f"engine 'vllm' (supported: {', '.join(SAMPLING_KEYS)}).",
                    hint="drop them, or engine: hf.",
                )
        check_dirs(p, "checkpoint_inference", relative_only=("sidecar",))  # now rather than at the first save
        self.rows = load_rows(p.dataset)
        self._check_rows()
        self.last_step: int | None = None  # global step of the last generation (every rank)
        self.listeners: list[InferenceListener] = []
        self.watchers: list[InferenceWatcher] = []
        self._model_ref: Any = None
        self.args: Any = None
        self.written: list[Path] = []
        self._vllm: Any = None  # engine vllm: a LiveVLLM, made at train begin

    def subscribe(self, listener: InferenceListener) -> None:
        """Call `listener.inference_ready(args, state, path, records, metrics)` after each generation."""
        if not any(existing is listener for existing in self.listeners):
            self.listeners.append(listener)

    def watch(self, watcher: InferenceWatcher) -> None:
        """Call `watcher(event, step, done, total, seconds, path)` with event 'start', 'batch' (after each batch)
        and 'end' (path: the step file) on the main process."""
        self.watchers.append(watcher)

    def _tell(self, state: Any, event: str, done: int, started: float, path: Path | None = None) -> None:
        if state.is_world_process_zero:
            for watcher in self.watchers:
                watcher(event, state.global_step, done, len(self.rows), time.perf_counter() - started, path)

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
                raise DataError(
                    f"checkpoint_inference dataset row {i}: missing columns {missing} (has {sorted(row)}).",
                    hint="fix the dataset or the *_column parameters.",
                )
        ids = [str(self._row_id(i)) for i in range(len(self.rows))]
        dups = duplicates(ids)
        if dups:
            raise DataError(
                f"checkpoint_inference dataset: duplicate ids {dups[:10]} in column {p.id_column!r}.",
                hint="ids must be unique to join references later.",
            )
        try:  # strict, as the step files are written: a NaN column would otherwise fail at the first save
            dumps_strict([self._record(i, "") for i in range(len(self.rows))])
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"checkpoint_inference dataset: records must be JSON-serializable ({exc}).",
                hint="convert the offending columns to strings or numbers.",
            ) from None

    def _row_id(self, i: int) -> Any:
        return self.rows[i].get(self.params.id_column, i)

    def _record(self, i: int, output: str) -> dict:
        row, p = self.rows[i], self.params
        return make_record(
            self._row_id(i), row[p.prompt_column], output, {c: row[c] for c in [*p.reference_columns, *p.extra_columns]}
        )

    @property
    def last_model(self) -> Any:
        """The model object the last generation used (a weak reference; for checks that nothing was copied)."""
        return self._model_ref() if self._model_ref is not None else None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None, **kwargs: object
    ) -> None:
        self.args = args
        if model is not None and not can_generate(model):
            raise ConfigError(
                f"callback 'checkpoint_inference': {type(model).__name__} cannot generate text "
                "(RewardTrainer trains a sequence-classification model).",
                hint="remove "
                "checkpoint_inference and best_checkpoint from reward-model runs and pick the best "
                "checkpoint with metric_for_best_model (e.g. 'eval_accuracy').",
            )
        if self.params.engine == "vllm" and model is not None:
            from rewardkit.callbacks.live_vllm import LiveVLLM, check_model

            check_model(model)
            self._vllm = self._vllm or LiveVLLM(self.params.vllm_kwargs)
        if state.is_world_process_zero:
            self._set_aside_stale(args, state.global_step)

    def _set_aside_stale(self, args: Any, step: int) -> None:
        """Move files of steps after the (resumed) step to stale/: they belong to an abandoned run."""
        folder = sidecar_dir(args, self.params.sidecar)
        stale = [path for s, path in step_files(folder).items() if s > step]
        if stale:
            (folder / "stale").mkdir(exist_ok=True)
            for path in stale:
                move_recorded(output_dir(args), path, folder / "stale" / path.name)
            logger.warning(
                "checkpoint_inference: moved %d inference files of steps after %d to %s (from a run "
                "that continued past the resumed checkpoint).",
                len(stale),
                step,
                folder / "stale",
            )

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        if self._vllm is not None:  # frees the engine's processes and memory
            self._vllm.close()

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        processing_class: Any = None,
        metrics: dict[str, float] | None = None,
        **kwargs: object,
    ) -> None:
        if self.params.on in ("evaluate", "both"):
            self._run(args, state, model, processing_class, metrics)

    def on_save(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        processing_class: Any = None,
        **kwargs: object,
    ) -> None:
        if self.generates_at("save", state.global_step):
            self._run(args, state, model, processing_class, None)

    def _run(self, args: Any, state: Any, model: Any, processing_class: Any, metrics: dict | None) -> None:
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        if model is None or tokenizer is None:
            raise ConfigError(
                "callback 'checkpoint_inference' got no model or processing_class from the trainer.",
                hint="pass processing_class= (the tokenizer) to the trainer.",
            )
        p, started = self.params, time.perf_counter()
        index, count = process_info()
        n = len(self.rows)
        folder = sidecar_dir(args, p.sidecar)
        self._tell(state, "start", 0, started)
        done = [0]

        def batch_done(rows: int) -> None:
            done[0] += rows
            self._tell(state, "batch", done[0], started)

        if self._vllm is not None:  # engine vllm: the main process generates everything with the saved adapter
            outputs = self._vllm.generate(
                args,
                folder,
                model,
                tokenizer,
                [row[p.prompt_column] for row in self.rows],
                max_new_tokens=p.max_new_tokens,
                generation_kwargs=p.generation_kwargs,
                use_chat_template=p.use_chat_template,
                is_main=state.is_world_process_zero,
            )
            pairs, gather = list(enumerate(outputs)), False  # every rank already holds all outputs
        else:
            # Sharded parameters: every rank runs the same number of generate calls (shards padded to one size)
            # with synced_gpus, or the all-gathers inside the forward passes would wait forever.
            sharded = count > 1 and sharded_training(args, model) is not None
            mine, pad = rank_share(n, index, count, even=sharded)
            prompts = [self.rows[i][p.prompt_column] for i in (mine + [mine[0] if mine else 0] * pad)]
            outputs = generate_texts(
                model,
                tokenizer,
                prompts,
                batch_size=p.batch_size,
                max_new_tokens=p.max_new_tokens,
                generation_kwargs=p.generation_kwargs,
                use_chat_template=p.use_chat_template,
                share_prefix=p.share_prompt_prefix,
                synced_gpus=sharded,
                progress=batch_done,
            )
            pairs, gather = list(zip(mine, outputs)), count > 1  # the padding's outputs are dropped
        if gather:
            from accelerate.utils import gather_object

            pairs = gather_object(pairs)
        by_index = dict(pairs)
        records = [self._record(i, by_index[i]) for i in range(n)]
        if state.is_world_process_zero:
            path = write_step_file(folder, state.global_step, state.epoch, records, inside=output_dir(args))
            self.written.append(path)
            self._tell(state, "end", n, started, path)
            logger.info(
                "checkpoint_inference: step %d, %d prompts in %.1fs -> %s",
                state.global_step,
                n,
                time.perf_counter() - started,
                path,
            )
        self.last_step = state.global_step
        self._model_ref = weakref.ref(model)
        for listener in list(self.listeners):  # every rank: a listener's scoring broadcasts from rank 0
            listener.inference_ready(args, state, folder / step_file_name(state.global_step), records, metrics)
