"""What every model-backed reward shares: one process-wide model cache, the device lookup, length batching.

BERTScore, RewardModel and plugins' model rewards (a BLEURT, a judge) load their model once per process on
first call, keyed by the settings that change the model, and pick `auto` = the current CUDA device (each rank
of a multi-GPU run has its own) else CPU. Nothing here imports torch until a device is actually looked up.
"""

from __future__ import annotations

import pickle
import re
import threading
from collections.abc import Hashable
from typing import Any, Callable, TypeVar

from rewardkit.core.errors import ConfigError

T = TypeVar("T")


def unsafe_weights_error(what: str, exc: Exception) -> ConfigError:
    """torch.load(weights_only=True) refused a pickled .bin: it holds objects that would run code when loaded."""
    found = re.search(r"unsupported (?:global|operand)[^\n]*", str(exc), re.IGNORECASE)  # torch names the culprit
    why = f" ({found.group(0).strip().rstrip('.')})" if found else ""
    return ConfigError(
        f"{what}: a pickled weights file (.bin) could not be loaded safely: it holds Python objects "
        f"other than tensors{why}, which could run code when unpickled, so it was not loaded.",
        hint="use weights saved as .safetensors (save_pretrained's default); load the .bin "
        "yourself only if you trust where it came from.",
    )


class ModelCache:
    """Loaded models by key (`(family, *settings)`); a key loads once even when threads ask at the same time."""

    def __init__(self) -> None:
        self._models: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Hashable, ...], load: Callable[[], T]) -> T:
        """The model cached under `key`, loaded with `load()` on the first request."""
        with self._lock:  # two threads asking at once must not load twice
            if key not in self._models:
                try:
                    self._models[key] = load()
                except pickle.UnpicklingError as exc:  # torch's own text advises weights_only=False: never that
                    raise unsafe_weights_error(f"{key[0]} model {key[1]!r}", exc) from None
            return self._models[key]

    def clear(self, family: str | None = None) -> None:
        """Forget the models of `family` (the key's first item), or all; memory is freed once no call holds them."""
        with self._lock:
            for key in [k for k in self._models if family is None or k[0] == family]:
                del self._models[key]

    def keys(self, family: str | None = None) -> list[tuple]:
        """The keys loaded so far, of `family` or all."""
        with self._lock:
            return [k for k in self._models if family is None or k[0] == family]


MODELS = ModelCache()  # shared by every model-backed reward of the process


def resolve_device(device: str | None) -> str:
    """`device` itself, or for None / "auto" the current CUDA device when there is one, else "cpu"."""
    if device and device != "auto":
        return device
    import torch

    return f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"


def length_batches(lengths: list[int], batch_size: int, bucket: bool) -> list[list[int]]:
    """Indices grouped longest first, at most batch_size per batch.

    With `bucket` (CPU) a batch also closes when the next sequence is under 90 % of the batch's longest, so
    padding stays under ~10 %: on CPU the work grows with padded tokens, while many small batches cost little.
    On GPU a forward pass costs about the same for any small batch, so batches are only capped by size.

    >>> length_batches([4, 10, 9, 4], 64, bucket=True)
    [[1, 2], [0, 3]]
    >>> length_batches([4, 10, 9, 4], 3, bucket=False)
    [[1, 2, 0], [3]]
    """
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda k: lengths[k], reverse=True):
        if not batches or len(batches[-1]) == batch_size or (bucket and lengths[i] < 0.9 * lengths[batches[-1][0]]):
            batches.append([])
        batches[-1].append(i)
    return batches
