"""Parameter models of the built-in callbacks; light (pydantic only) so `rewardkit list` never imports torch."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field

from rewardkit.core.validation import Params


class _Params(Params):
    pass


def _dataset_rows(value: Any) -> Any:
    """A `datasets.Dataset` (anything with to_list) becomes its rows."""
    return value.to_list() if callable(getattr(value, "to_list", None)) else value


class LoRASaveParams(_Params):
    """Parameters of `lora_save`."""

    output_dir: str | None = Field(
        None,
        description="Where adapters go: a folder under args.output_dir (default "
        "'adapters'; '..' out of the run is refused) or an explicit absolute path.",
    )
    layout: Literal["step", "epoch"] = Field(
        "step", description="Folder names: step_{global_step} or epoch_{E} (E = 1-based epoch in progress)."
    )
    save_tokenizer: bool = Field(True, description="Also save the tokenizer (processing_class) next to the adapter.")
    no_adapter: Literal["save_full", "error"] = Field(
        "save_full", description="Model without a PEFT adapter: save the full model (warns once) or raise."
    )


class CheckpointInferenceParams(_Params):
    """Parameters of `checkpoint_inference`."""

    dataset: Annotated[Union[str, list[dict[str, Any]]], BeforeValidator(_dataset_rows)] = Field(
        description="Validation rows: path to a JSON list / JSONL file (or a step_N.json), a list of dicts, or a "
        "datasets.Dataset."
    )
    prompt_column: str = Field("prompt", description="Column with the prompt: a string or chat messages.")
    id_column: str = Field("id", description="Column with the row id; rows without one use their index.")
    reference_columns: list[str] = Field(
        default_factory=list,
        description="Columns copied into each record (references the scoring spec reads, e.g. ['answer']).",
    )
    extra_columns: list[str] = Field(default_factory=list, description="Other columns copied into each record.")
    sidecar: str = Field(
        "inference",
        description="Folder under args.output_dir for step_{N}.json files; a "
        "best_checkpoint with the same sidecar is its partner (rewardkit.callbacks.link_callbacks).",
    )
    on: Literal["save", "evaluate", "both"] = Field(
        "evaluate", description="When to generate; 'evaluate' lets best_checkpoint feed metric_for_best_model."
    )
    batch_size: int = Field(
        16,
        gt=0,
        description="Prompts per generate() call (GRPO itself generates "
        "per_device_train_batch_size sequences at once; lower it if memory is tight).",
    )
    share_prompt_prefix: bool = Field(
        True,
        description="Encode the tokens every prompt starts with (system "
        "prompt, instructions) once and reuse their KV cache in every batch.",
    )
    max_new_tokens: int = Field(128, gt=0, le=1_000_000, description="Generation length limit.")
    generation_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra GenerationConfig fields; greedy (do_sample=False) by default."
    )
    use_chat_template: bool | None = Field(
        None,
        description="None = like TRL: chat messages use the chat template, strings are used as they are; "
        "True = also wrap string prompts as a user turn; False = raw strings only.",
    )
    engine: Literal["hf", "vllm"] = Field(
        "hf",
        description="hf: the live model generates; vllm: the live LoRA adapter is saved each step and a "
        "vLLM engine on the base model generates with it (PEFT runs only; needs vllm).",
    )
    vllm_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="engine vllm: extra vllm.LLM arguments "
        "(gpu_memory_utilization defaults to 0.3 on a GPU, max_model_len...).",
    )


class BestCheckpointParams(_Params):
    """Parameters of `best_checkpoint`."""

    spec: Union[dict[str, Any], str] = Field(description="Compose spec: a dict, a YAML/TOML/JSON path or a preset.")
    metric: str = Field("score", description="Name inserted into eval metrics as eval_<metric>.")
    sidecar: str = Field("inference", description="Folder under args.output_dir holding the inference files.")
    aggregate: Literal["corpus", "item"] = Field(
        "corpus",
        description="corpus: combine the per-component means (None excluded per component); "
        "item: mean of the per-row combined scores.",
    )
    completion_key: str | None = Field(
        None,
        description="Record field holding the generated text; None: "
        "'completion' when the records have it, else 'output'.",
    )
    top_k: int | None = Field(None, ge=1, description="Keep only the k best lora_save adapter folders.")
    best_dir: str = Field("best", description="Folder under args.output_dir receiving a copy of the best adapter.")
    greater_is_better: bool = Field(True, description="Whether a higher score is better.")
    adapters_dir: str | None = Field(
        None,
        description="lora_save's folder: under args.output_dir (default 'adapters') or an absolute path; "
        "checkpoint-N is the fallback. top_k prunes only folders lora_save marked as its own.",
    )
    policy: Literal["best", "earliest_tied"] = Field(
        "best",
        description="Which checkpoint best/ holds: best (the top score) or earliest_tied (the earliest "
        "whose difference to the best has a 95% bootstrap interval holding 0). metric_for_best_model still ranks "
        "by the score.",
    )
    bootstrap: int = Field(
        1000,
        ge=0,
        description="Paired bootstrap resamples behind each checkpoint's 95% "
        "interval in scores.json (0: off; earliest_tied needs it).",
    )
    seed: int = Field(0, description="Seed of the bootstrap.")
    divergence_warn: int | None = Field(
        None,
        ge=2,
        description="Reward-hacking alarm: warn once (log, trainer_state.json, scores.json) when the "
        "training reward rose and the held-out score got worse over the last K evaluations.",
    )
    divergence_stop: bool = Field(
        False, description="When the alarm fires, stop training after this step's save (needs divergence_warn)."
    )
