"""Loading the model for `rewardkit generate`: a local folder (offline) or an already cached hub id, never a
download; a LoRA adapter on top; device and dtype."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING

from rewardkit.core.errors import ConfigError
from rewardkit.models import TOKENIZER_FILES, cached, is_hub_id, offline
from rewardkit.rewards.models import unsafe_weights_error

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_model_source(model: str | os.PathLike[str]) -> tuple[str, bool]:
    """(path or hub id, local_files_only). Local folders load offline; a hub id must already be in the cache
    (we never download here: an unreachable hub would be retried for tens of seconds)."""
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            what = "a file" if not path.is_dir() else "a folder without config.json"
            hint = (
                " It holds adapter_config.json: pass it as --adapter DIR and its base model as MODEL."
                if (path / "adapter_config.json").is_file()
                else ""
            )
            raise ConfigError(
                f"model {text!r} is {what}, not a saved model.{hint}",
                hint="pass the folder holding config.json and the weights (e.g. runs/sft/merged).",
            )
        return str(path), True
    looks_like_path = text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1 or text.endswith("/")
    if looks_like_path or not is_hub_id(text):
        raise ConfigError(
            f"model folder {text!r} does not exist.",
            hint="check the path (relative paths start at the current directory).",
        )
    if not cached(text, ("config.json",)):
        note = " (HF_HUB_OFFLINE is set)" if offline() else ""
        raise ConfigError(
            f"model {text!r} is neither a local folder nor in the Hugging Face cache{note}; "
            "rewardkit generate does not download.",
            hint=f"pass a local folder (e.g. runs/sft/merged), or download it first: hf download {text}.",
        )
    return text, True


def check_adapter(adapter: str | Path) -> Path:
    """The adapter folder, which must hold adapter_config.json."""
    path = Path(adapter).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"--adapter {str(adapter)!r} is not a folder.",
            hint="pass the folder holding adapter_config.json (e.g. runs/x/best or runs/x/adapters/step_N).",
        )
    if not (path / "adapter_config.json").is_file():
        hint = (
            " It holds a full model (config.json): pass it as MODEL without --adapter."
            if (path / "config.json").is_file()
            else ""
        )
        raise ConfigError(
            f"--adapter {str(adapter)!r} has no adapter_config.json, so it is not a PEFT adapter.{hint}",
            hint="pass the folder holding adapter_config.json (e.g. runs/x/best).",
        )
    return path


def _has_tokenizer(folder: str | Path) -> bool:
    folder = Path(folder)
    return folder.is_dir() and any((folder / n).is_file() for n in TOKENIZER_FILES)


def resolve_device(device: str) -> str:
    import torch

    device = (device or "auto").strip().lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: no CUDA GPU is available.", hint="--device cpu (or auto).")
        return device
    raise ConfigError(f"--device {device!r}: expected auto, cpu or cuda (cuda:N).", hint="--device auto.")


def resolve_dtype(dtype: str, device: str) -> torch.dtype | str:
    """A torch dtype; `auto` = float32 on CPU and the checkpoint's own dtype on a GPU."""
    import torch

    name = (dtype or "auto").strip().lower()
    if name not in DTYPES:
        raise ConfigError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}.", hint="--dtype auto.")
    if name == "auto":
        return torch.float32 if device == "cpu" else "auto"
    return getattr(torch, name)


def load_tokenizer(
    tokenizer: str | os.PathLike[str] | None, adapter_dir: Path | None, source: str, local_only: bool
) -> PreTrainedTokenizerBase:
    """The tokenizer from `tokenizer`, else the adapter folder when it holds one (lora_save and Trainer.save_model
    save it there), else the model `source`; a failed load is one ConfigError."""
    from transformers import AutoTokenizer

    tok_source = (
        str(tokenizer)
        if tokenizer is not None
        else (str(adapter_dir) if adapter_dir is not None and _has_tokenizer(adapter_dir) else source)
    )
    try:
        return AutoTokenizer.from_pretrained(tok_source, local_files_only=local_only)
    except Exception as exc:
        raise ConfigError(
            f"cannot load the tokenizer from {tok_source!r} ({type(exc).__name__}: {str(exc)[:200]}).",
            hint="pass a folder holding tokenizer files (--tokenizer in Python: tokenizer=).",
        ) from None


def load_model_for_inference(
    model: str | os.PathLike[str],
    adapter: str | Path | None = None,
    device: str = "auto",
    dtype: str = "auto",
    tokenizer: str | Path | None = None,
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """(model in eval mode on `device`, tokenizer) from a local folder or a cached hub id, plus a LoRA adapter.

    The adapter is applied unmerged, as during training (so outputs match what `checkpoint_inference` scored).
    The tokenizer comes from `tokenizer`, else the adapter folder when it holds one (lora_save and
    Trainer.save_model save it there), else the model.
    """
    source, local_only = resolve_model_source(model)
    adapter_dir = check_adapter(adapter) if adapter is not None else None
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    from transformers import AutoModelForCausalLM

    tok = load_tokenizer(tokenizer, adapter_dir, source, local_only)
    try:
        base = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, local_files_only=local_only)
    except pickle.UnpicklingError as exc:
        raise unsafe_weights_error(f"model {source!r}", exc) from None
    except Exception as exc:
        raise ConfigError(
            f"cannot load a causal LM from {source!r} ({type(exc).__name__}: {str(exc)[:200]}).",
            hint="pass a folder saved with save_pretrained (a text-generation model; reward models cannot generate).",
        ) from None
    lm: torch.nn.Module = base  # the Module type: transformers' functools.wraps'd `to` does not bind self for mypy
    if adapter_dir is not None:
        from peft import PeftModel

        try:
            lm = PeftModel.from_pretrained(base, str(adapter_dir))
        except Exception as exc:
            if isinstance(exc, pickle.UnpicklingError):
                raise unsafe_weights_error(f"adapter {str(adapter_dir)!r}", exc) from None
            raise ConfigError(
                f"adapter {str(adapter_dir)!r} does not fit model {source!r} ({type(exc).__name__}: {str(exc)[:200]}).",
                hint="pass the base model the adapter was trained on.",
            ) from None
    lm.to(dev)
    lm.eval()
    return lm, tok
