"""The error of a reward whose worker process ended while scoring (the processes themselves: `core.pool`)."""

from __future__ import annotations

from rewardkit.core.errors import RewardError


class WorkerDied(RewardError):
    """The worker process ended while scoring (os._exit, a crash, the OOM killer): no row has a score."""
