"""The timeout worker: a reward whose worker dies or cannot start is a RewardError naming it; on_error applies."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rewardkit import (
    RewardError,
)
from rewardkit.rewards.function_rewards import FunctionReward
from tests.conftest import Ctx, Row, raises, returns, row_ids, run_row, warns


def dies(completions, **kwargs):
    """Ends its process like a segfault or the OOM killer would."""
    os._exit(7)


def exits(completions, **kwargs):
    sys.exit(3)


def timeout_reward(func: Callable, **params) -> Callable[[Ctx], Any]:
    return lambda c: FunctionReward(func, timeout=30, **params)(completions=["a", "b"])


BAD_INPUTS = [
    # 4. A timeout worker that dies or cannot start: a RewardError naming the reward; on_error none/zero apply.
    Row(
        "worker-dies-on_error-raise",
        timeout_reward(dies),
        raises(RewardError, r"Reward 'dies': the worker process died \(exit code 7\)"),
    ),
    Row(
        "worker-dies-on_error-none",
        timeout_reward(dies, on_error="none"),
        warns(r"worker process died \(exit code 7\).*score None", [None, None]),
    ),
    Row(
        "worker-dies-on_error-zero",
        timeout_reward(dies, on_error="zero"),
        warns(r"worker process died \(exit code 7\).*score 0.0", [0.0, 0.0]),
    ),
    Row(
        "worker-dies-twice-each-call-starts-a-fresh-worker",
        lambda c: [
            (reward := FunctionReward(dies, timeout=30, on_error="none"))(completions=["a"]),
            reward(completions=["b"]),
            reward.error_count,
        ],
        warns(r"worker process died", [[None], [None], 2]),
    ),
    Row("reward-calls-sys-exit-in-worker-on_error-none", timeout_reward(exits, on_error="none"), returns([None, None])),
    Row(
        "worker-reward-not-picklable",
        lambda c: FunctionReward(lambda completions, **kw: [1.0], timeout=30)(completions=["a"]),
        raises(RewardError, r"cannot be sent to its worker process.*module level"),
    ),
    Row(
        "reward-calls-sys-exit-on_error-raise",
        lambda c: FunctionReward(exits)(completions=["a"]),
        raises(RewardError, r"Reward 'exits' failed on completion 0 .*SystemExit"),
    ),
    Row(
        "reward-calls-sys-exit-on_error-none",
        lambda c: FunctionReward(exits, on_error="none")(completions=["a"]),
        returns([None]),
    ),
    Row(
        "reward-calls-sys-exit-in-worker",
        timeout_reward(exits),
        raises(RewardError, r"Reward 'exits' failed on completion 0 .*SystemExit"),  # as in process
    ),
]


@pytest.mark.parametrize("row", BAD_INPUTS, ids=row_ids(BAD_INPUTS))
def test_bad_input(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run_row(row, tmp_path, monkeypatch, capsys)
