"""Sharded training (FSDP, DeepSpeed ZeRO-3) for the callbacks: which kind, each rank's share of the prompts,
and the adapter gathered to full tensors.

Under sharding every rank holds a slice of each parameter and a forward pass all-gathers them, so every rank
must run the same forwards: each generates its shard of the prompts in the same number of `generate` calls
with `synced_gpus=True` (a rank that finished keeps joining the all-gathers), and saving gathers the adapter
(every rank) before the main process writes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import TrainingArguments


def sharded_model(model: Any) -> str | None:
    """'FSDP' or 'DeepSpeed ZeRO-3' when `model`'s parameters are sharded across ranks, else None."""
    if model is None:
        return None
    try:
        from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel
    except ImportError:  # pragma: no cover - torch without distributed
        return None
    for module in model.modules():
        if isinstance(module, (FSDPModule, FullyShardedDataParallel)):
            return "FSDP"
    if any(hasattr(p, "ds_id") for p in model.parameters()):  # deepspeed's partitioned parameters
        return "DeepSpeed ZeRO-3"
    return None


def sharded_training(args: TrainingArguments, model: Any = None) -> str | None:
    """'FSDP' or 'DeepSpeed ZeRO-3' when parameters are sharded (by the model, else the run's settings)."""
    kind = sharded_model(model)
    if kind is not None:
        return kind
    from accelerate import PartialState
    from accelerate.utils import DistributedType

    if getattr(args, "fsdp", None) or PartialState().distributed_type == DistributedType.FSDP:
        return "FSDP"
    try:
        from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled
    except ImportError:  # pragma: no cover - old transformers
        return None
    return "DeepSpeed ZeRO-3" if is_deepspeed_zero3_enabled() else None


def rank_share(n: int, index: int, count: int, even: bool) -> tuple[list[int], int]:
    """(row indices of rank `index`, how many copies of its first row to append).

    Contiguous shards; with `even` every rank gets the same number of prompts (the largest shard's), padding
    with repeats (row 0 for an empty shard) so all ranks make the same number of generate calls.

    >>> rank_share(5, 1, 2, even=True), rank_share(1, 0, 2, even=True), rank_share(5, 1, 2, even=False)
    (([2, 3, 4], 0), ([], 1), ([2, 3, 4], 0))
    >>> rank_share(5, 0, 2, even=True)
    ([0, 1], 1)
    """
    mine = list(range(index * n // count, (index + 1) * n // count))
    if not even:
        return mine, 0
    largest = max((i + 1) * n // count - i * n // count for i in range(count))
    return mine, largest - len(mine)


def _adapter_names(model: Any) -> set[str] | None:
    """Names of the parameters a save keeps: the trainable ones of a PEFT model (its adapter), None = all."""
    from rewardkit.callbacks.common import has_adapter

    if not has_adapter(model):
        return None
    return {name for name, p in model.named_parameters() if p.requires_grad}


def gathered_state_dict(model: Any, is_main: bool) -> dict | None:
    """The adapter's (a PEFT model) or the whole model's state dict as full CPU tensors, on the main process
    (None elsewhere). A collective: every rank must call it, in the same order."""
    import torch

    keep = _adapter_names(model)
    kind = sharded_model(model)
    if kind == "DeepSpeed ZeRO-3":
        import deepspeed

        params = [(n, p) for n, p in model.named_parameters() if keep is None or n in keep]
        with deepspeed.zero.GatheredParameters([p for _, p in params], modifier_rank=None):
            full = {n: p.detach().to("cpu", copy=True) for n, p in params} if is_main else None
        if full is not None and keep is None:  # buffers are not partitioned
            full.update({n: b.detach().to("cpu", copy=True) for n, b in model.named_buffers()})
        return full
    from torch.distributed.tensor import DTensor

    gathered: dict[str, torch.Tensor] = {}
    for name, value in model.state_dict().items():  # FSDP2: DTensor shards; same key order on every rank
        if keep is not None and name not in keep:  # FSDP2 keeps the module's own names
            continue
        tensor = value.full_tensor() if isinstance(value, DTensor) else value
        if is_main:
            gathered[name] = tensor.detach().to("cpu", copy=True)
    return gathered if is_main else None
