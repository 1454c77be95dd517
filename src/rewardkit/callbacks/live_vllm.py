"""`checkpoint_inference` with `engine: vllm`: the live adapter reaches vLLM as a saved LoRA folder.

At each generation the trainer's PEFT adapter is saved (gathered first under FSDP / ZeRO-3, every rank joining)
to `<sidecar>/.vllm-adapter/`, and one vLLM engine, started on the base model at the first generation with LoRA
enabled, generates every prompt on the main process with that adapter (reloaded in place each step). The
other ranks wait for the outputs. Only PEFT runs qualify: a full fine-tune would need the weights copied into
vLLM at each step, which is what TRL's own `use_vllm` does for training generations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardkit.callbacks.common import broadcast_from_main, has_adapter, logger, record_root
from rewardkit.callbacks.sharded import gathered_state_dict, sharded_training
from rewardkit.core import written
from rewardkit.core.distributed import process_info
from rewardkit.core.errors import ConfigError

ADAPTER_DIR = ".vllm-adapter"
GPU_SHARE = 0.3  # vLLM's share of the GPU next to the training model, unless vllm_kwargs say otherwise


def base_model_path(model: Any) -> str:
    """The base model folder or hub id the adapter was trained on (what vLLM loads)."""
    configs = getattr(model, "peft_config", None) or {}
    for config in configs.values():
        if getattr(config, "base_model_name_or_path", None):
            return str(config.base_model_name_or_path)
    return str(getattr(model, "name_or_path", "") or "")


def check_model(model: Any) -> None:
    """Refuse models the vllm engine cannot follow: no PEFT adapter, or no base model path."""
    if not has_adapter(model):
        raise ConfigError(
            "callback 'checkpoint_inference': engine 'vllm' needs a PEFT (LoRA) model: its adapter "
            "is handed to vLLM at each step.",
            hint="train with peft, or engine: hf (a full fine-tune's weights reach vLLM only through TRL's use_vllm).",
        )
    if not base_model_path(model):
        raise ConfigError(
            "callback 'checkpoint_inference': engine 'vllm' cannot tell the base model's folder.",
            hint="load the model from a folder or hub id, or engine: hf.",
        )


class LiveVLLM:
    """One vLLM engine per run, fed the live adapter at each generation."""

    def __init__(self, vllm_kwargs: dict) -> None:
        self.vllm_kwargs = dict(vllm_kwargs)
        self.engine: Any = None
        self.warned = False

    def generate(
        self,
        args: Any,
        folder: Path,
        model: Any,
        tokenizer: Any,
        prompts: list,
        *,
        max_new_tokens: int,
        generation_kwargs: dict,
        use_chat_template: bool | None,
        is_main: bool,
    ) -> list[str]:
        """Every rank calls this; the main process generates all `prompts`, the others receive the outputs."""
        adapter = folder / ADAPTER_DIR
        state_dict = None
        if process_info()[1] > 1 and sharded_training(args, model) is not None:
            state_dict = gathered_state_dict(model, is_main)
        outputs = None
        if is_main:
            try:
                root = record_root(args, folder)
                kept = frozenset(found.path for found in written.remove_recorded(root, [adapter]))  # the run's only
                if kept and not self.warned:
                    self.warned = True
                    logger.warning("checkpoint_inference: %s holds files this run did not write; kept.", adapter)
                written.note(root, adapter, "pending")  # peft's file names, should a kill cut the save short
                model.save_pretrained(adapter, **({} if state_dict is None else {"state_dict": state_dict}))
                written.note_many(
                    root, [*written.tree_lines(adapter, adapter, kept)[1:], (adapter, "saved", None, None)]
                )
                outputs = self._engine(model, tokenizer).generate(
                    prompts,
                    max_new_tokens=max_new_tokens,
                    generation_kwargs=generation_kwargs,
                    use_chat_template=use_chat_template,
                    adapter=adapter,
                )
            except Exception as exc:  # the other ranks must not wait for outputs that will not come
                broadcast_from_main({"error": f"{type(exc).__name__}: {exc}"})
                raise
        outputs = broadcast_from_main(outputs)
        if isinstance(outputs, dict):
            raise ConfigError(f"checkpoint_inference (engine vllm) failed on the main process: {outputs['error']}")
        return outputs

    def _engine(self, model: Any, tokenizer: Any) -> Any:
        if self.engine is None:
            import torch

            from rewardkit.engines.vllm_engine import VLLMEngine, fitting_rank

            kwargs = dict(self.vllm_kwargs)
            if torch.cuda.is_available():
                kwargs.setdefault("gpu_memory_utilization", GPU_SHARE)
            dtype = str(kwargs.pop("dtype", "auto" if torch.cuda.is_available() else "float32"))
            ranks = [int(getattr(c, "r", 0) or 0) for c in model.peft_config.values()]
            self.engine = VLLMEngine(
                base_model_path(model),
                tokenizer,
                lora=True,
                dtype=dtype,
                llm_kwargs=kwargs,
                max_lora_rank=fitting_rank(max(ranks + [1])),
            )
        return self.engine

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
