"""Which process this is in a multi-process run: the one answer every part of rewardkit uses.

Light: torch is never imported here. A process that has not imported torch has no process group, so the
launcher's environment (RANK / WORLD_SIZE, set by torchrun and `accelerate launch`) is the answer then.
"""

from __future__ import annotations

import os
import sys


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:  # a malformed variable is the launcher's problem; act as a single process
        return default


def process_info() -> tuple[int, int]:
    """(process index, number of processes); (0, 1) outside a distributed run.

    An initialized torch.distributed group wins (inside a Trainer it is the truth, and it equals accelerate's
    process_index); before it exists the launcher's RANK / WORLD_SIZE are. Asking accelerate's PartialState
    instead would initialize the process group as a side effect.
    """
    if "torch" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    return _env_int("RANK", 0), max(1, _env_int("WORLD_SIZE", 1))


def is_main_process() -> bool:
    """Whether this is global rank 0 (or a single-process run)."""
    return process_info()[0] == 0
