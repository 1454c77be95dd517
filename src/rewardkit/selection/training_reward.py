"""The training reward beside the held-out score: the reward-hacking alarm's two signals, joined per step.

TRL's GRPOTrainer logs `reward` (the weighted sum) and `rewards/<name>/mean` every `logging_steps`; the
Trainer keeps them in `state.log_history` (and `trainer_state.json`). For an evaluated step N the training
reward is the latest training log entry at a step <= N (the logging window that ends at or before N).
Divergence: over the last K evaluations the training reward rose while the held-out score fell, the classic
sign of a gamed reward. Light module (JSON only).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rewardkit.selection.checkpoint_score import CheckpointScore


def _reward_entry(entry: dict) -> dict | None:
    """{"reward", "rewards", "step"} of one training log entry, or None when it logged no reward."""
    reward = entry.get("reward")
    if isinstance(reward, bool) or not isinstance(reward, (int, float)):
        return None
    rewards = {}
    for key, value in entry.items():
        if key.startswith("rewards/") and not key.endswith("/std") and isinstance(value, (int, float)):
            rewards[key[len("rewards/") :].removesuffix("/mean")] = float(value)
    return {"reward": float(reward), "rewards": rewards, "step": entry.get("step")}


def training_rewards(log_history: Sequence[dict], steps: Sequence[int]) -> dict[int, dict]:
    """step -> the training reward logged nearest at or before it ({"reward", "rewards", "step"})."""
    logged = sorted(
        (e["step"], r)
        for e in log_history
        if isinstance(e, dict) and isinstance(e.get("step"), int) and (r := _reward_entry(e)) is not None
    )
    out: dict[int, dict] = {}
    for step in steps:
        before = [r for s, r in logged if s <= step]
        if before:
            out[step] = before[-1]
    return out


def read_log_history(run_dir: str | Path) -> list[dict]:
    """The longest log_history among the run's trainer_state.json files (run folder, checkpoint-N); [] if none."""
    run = Path(run_dir)
    best: list[dict] = []
    for path in [run / "trainer_state.json", *run.glob("checkpoint-*/trainer_state.json")]:
        try:
            history = json.loads(path.read_text(encoding="utf-8")).get("log_history")
        except (OSError, ValueError, AttributeError):
            continue  # a checkpoint being written or damaged: another file has the history
        if isinstance(history, list) and len(history) > len(best):
            best = history
    return best


def attach(checkpoints: Sequence[CheckpointScore], log_history: Sequence[dict]) -> None:
    """Fill each checkpoint's train_reward / train_rewards from the log (left as is where nothing was logged)."""
    found = training_rewards(log_history, [c.step for c in checkpoints if c.step is not None])
    for c in checkpoints:
        if c.step in found:
            c.train_reward, c.train_rewards = found[c.step]["reward"], found[c.step]["rewards"]


def attach_training_reward(checkpoints: Sequence[CheckpointScore], inference_dir: str | Path) -> None:
    """`attach` from the trainer_state.json files of the run that holds `inference_dir` (its parent)."""
    history = read_log_history(Path(inference_dir).parent)
    if history:
        attach(checkpoints, history)


def divergence(
    points: Sequence[tuple[int | None, float | None, float | None]], window: int, greater_is_better: bool = True
) -> dict | None:
    """Over the last `window` evaluations (step, held-out score, training reward): the training reward rose and
    the held-out score got worse, first to last; the evidence as a dict, else None.

    >>> divergence([(10, 0.5, 0.2), (20, 0.4, 0.6), (30, 0.3, 0.9)], 3)["steps"]
    [10, 20, 30]
    >>> divergence([(10, 0.5, 0.2), (20, 0.6, 0.6)], 2) is None
    True
    """
    usable = [(s, h, t) for s, h, t in points if h is not None and t is not None]
    if window < 2 or len(usable) < window:
        return None
    last = usable[-window:]
    (s0, h0, t0), (s1, h1, t1) = last[0], last[-1]
    worse = h1 < h0 if greater_is_better else h1 > h0
    if not (t1 > t0 and worse):
        return None
    return {
        "steps": [p[0] for p in last],
        "held_out": [p[1] for p in last],
        "train_reward": [p[2] for p in last],
        "message": f"training reward rose {t0:.4g} -> {t1:.4g} while the held-out score "
        f"{'fell' if greater_is_better else 'rose'} {h0:.4g} -> {h1:.4g} over the last {window} "
        f"evaluations (steps {s0}-{s1}): the reward may be gamed",
    }


def run_summary(scores_file: str | Path) -> dict[str, Any] | None:
    """What an end-of-run summary shows, from best_checkpoint's scores.json: per evaluated step the held-out
    score, its interval and the training reward; the best; the divergence alarm. None without a record."""
    path = Path(scores_file)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("checkpoints"), list):
        return None
    keys = ("step", "score", "ci_low", "ci_high", "tied_with_best", "train_reward", "train_rewards")
    rows = [{k: c.get(k) for k in keys} for c in record["checkpoints"] if isinstance(c, dict)]
    best = record.get("best") if isinstance(record.get("best"), dict) else None
    return {
        "metric": record.get("metric"),
        "expression": record.get("expression"),
        "checkpoints": rows,
        "best_step": best.get("step") if best else None,
        "best_score": best.get("score") if best else None,
        "policy": record.get("policy", "best"),
        "tie": record.get("tie"),
        "divergence": record.get("divergence"),
    }
