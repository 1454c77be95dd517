"""What changed between the config an interrupted run trained with and the one resuming it.

A change to what is trained (the model, the data, the rewards, the adapter, the optimisation or GRPO settings)
is refused unless the user accepts it (`--accept-config-change`); a change to how the run logs, evaluates, saves
or picks its best checkpoint is accepted with one line. Light module: no torch, transformers or trl.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Keys whose value does not change what a training step computes.
_SAFE = re.compile(
    r"^(output_dir|trl_eval|callbacks(\..*)?|dataset\.(eval_file|eval_split|smoke_path)"
    r"|trainer\.(logging_.*|log_.*|report_to|eval_.*|per_device_eval_batch_size|num_generations_eval|save_.*"
    r"|disable_tqdm|run_name"
    r"|metric_for_best_model|greater_is_better|load_best_model_at_end|push_to_hub|hub_.*|resume_from_checkpoint"
    r"|dataloader_num_workers|dataloader_pin_memory|dataloader_persistent_workers|dataloader_prefetch_factor"
    r"|prediction_loss_only|include_.*|overwrite_output_dir|batch_eval_metrics|do_eval|do_predict"
    r"|log_completions|num_completions_to_print|wandb_.*|project|trackio_.*))$"
)


def settings(config: dict[str, Any], rewards: Any) -> dict[str, Any]:
    """What a run records to compare on resume: the stage config (JSON) and its loaded reward spec."""
    return json.loads(json.dumps({"config": config, "rewards": rewards}, default=str))


def _flat(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flat(inner, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value
    return out


def changed_keys(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Dotted keys whose value differs (a whole reward spec counts as the one key `rewards`)."""
    keys: list[str] = []
    if before.get("rewards") != now.get("rewards"):
        keys.append("rewards")
    old = _flat(before.get("config") or {}, "", {})
    new = _flat(now.get("config") or {}, "", {})
    for key in sorted(set(old) | set(new)):
        if key.startswith("rewards"):
            continue  # compared above, as loaded (a spec file's content, not its path)
        if old.get(key, _MISSING) != new.get(key, _MISSING):
            keys.append(key)
    return keys


_MISSING = object()


def split_changes(keys: list[str]) -> tuple[list[str], list[str]]:
    """(changes to what is trained, changes to logging/evaluation/saving only)."""
    trained = [k for k in keys if not _SAFE.match(k)]
    return trained, [k for k in keys if _SAFE.match(k)]
