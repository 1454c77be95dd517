"""Models a spec names, and whether each resolves, found in about a second.

Discovery: a reward parameter marked with `validation.ModelRef` names a model (BERTScore's `model_type`,
`reward_model`'s `model` and `tokenizer`, a plugin's BLEURT or judge model), so preflight, `--smoke`'s swaps and
`@stage` resolution find every model of every reward the same way, plugins' rewards included.

Resolution: a name resolves when it is a local folder holding the right files (a model: config.json or
adapter_config.json; a tokenizer: tokenizer.json, tokenizer_config.json or a vocabulary file), or a hub id that
is in the Hugging Face cache, or, unless HF_HUB_OFFLINE=1, that the hub confirms exists. The hub is asked once
per id, in a daemon thread with a hard deadline (`HUB_TIMEOUT`, 4 s; env REWARDKIT_HUB_TIMEOUT): huggingface_hub's
own timeouts cover neither DNS look-ups nor its user-agent requests, so only a deadline bounds the wait.
Light module: huggingface_hub only.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from rewardkit.composition.spec import ComposeSpec
from rewardkit.core.errors import ConfigError
from rewardkit.core.plugins import get_registry
from rewardkit.core.validation import ModelRef, model_ref_fields, stage_ref

if TYPE_CHECKING:
    from pydantic import BaseModel

    from rewardkit.api import Overrides, SpecSource
    from rewardkit.composition.composed import Composed

HUB_TIMEOUT = 4.0  # seconds one hub question may take (env REWARDKIT_HUB_TIMEOUT)
MODEL_FILES = ("config.json", "adapter_config.json")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
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


def problem(value: str, kind: str = "model", timeout: float | None = None) -> str | None:
    """Why `value` does not resolve as a `kind` ('model' or 'tokenizer'), or None when it does.

    `timeout`: the hub deadline (default `hub_timeout()`)."""
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
    return _ask_hub(value, timeout if timeout is not None else hub_timeout())


def fix_hint(value: str, last: str) -> str:
    """The fix for a model or tokenizer that does not resolve; `last` is the final option offered."""
    if is_hub_id(value) and not Path(value).expanduser().exists():
        cache = "" if offline() else ", set HF_HUB_OFFLINE=1 to use the cache"
        return f"use a local folder, run `hf download {value}` while online{cache}, or {last}"
    return f"check the path (relative paths start at the current directory, {os.getcwd()}), or {last}"


# --- models named inside reward specs --------------------------------------------------------------------------
@dataclass(frozen=True)
class NamedModel:
    """A model a compose spec names: rewards.<alias>.<field> = value, marked with `ref`."""

    alias: str
    field: str
    value: str
    ref: ModelRef

    @property
    def stage(self) -> str | None:
        """The pipeline stage of an `@<stage>` value, else None."""
        return stage_ref(self.value)


def reward_params(use: object) -> type[BaseModel] | None:
    """The Params model of the registered reward `use` (None: unknown name, a callable, a plain function)."""
    if not isinstance(use, str):
        return None
    try:
        entry = get_registry().get("rewards", use)
        if entry.params is None and entry.lazy:  # 'module:Class' registered without params=: ask the class
            entry.params = getattr(entry.load(), "Params", None)
    except Exception:  # unknown or broken: compose reports it later, with its own message
        return None
    return entry.params


def entry_models(alias: str, entry: dict) -> list[NamedModel]:
    """Every model one normalised reward entry names (a ModelRef field's default model included)."""
    params = reward_params(entry.get("use"))
    if params is None:  # unknown name, a callable, a plain function: no ModelRef fields
        return []
    out = []
    for field, ref in model_ref_fields(params).items():
        value = entry.get(field)
        if value is None:
            default = getattr(params, "default_model", None)
            value = default(field, entry) if callable(default) else None
            if value is None:  # the field's own default names a model (e.g. bleurt's hub checkpoint)
                value = params.model_fields[field].default
        if isinstance(value, str) and value:
            out.append(NamedModel(alias, field, value, ref))
    return out


def spec_models(spec: ComposeSpec) -> list[NamedModel]:
    """Every model the spec's rewards name, in spec order."""
    return [m for alias, entry in spec.rewards.items() for m in entry_models(alias, entry)]


def spec_servers(spec: ComposeSpec) -> list[tuple[str, str]]:
    """(alias, base_url) of the rewards that call a server and can stand in offline (an `offline_stand_in`
    parameter, e.g. `judge`) and are not offline yet: what `--smoke` puts offline."""
    out = []
    for alias, entry in spec.rewards.items():
        params = reward_params(entry.get("use"))
        if params is not None and "offline_stand_in" in params.model_fields and not entry.get("offline_stand_in"):
            out.append((alias, str(entry.get("base_url", "its server"))))
    return out


# The `rewardkit tiny` flag that builds a stand-in for each ModelRef.tiny kind (what a missing-model hint offers).
TINY_FLAGS = {"lm": "", "bert": " --bert", "bleurt": " --bleurt", "rm": " --classifier", "classifier": " --classifier"}
TINY_WHAT = {"lm": "causal LM", "bert": "BERT", "bleurt": "BLEURT checkpoint", "rm": "reward model"}


def tiny_hint(model: NamedModel) -> str:
    """Point the field at a local folder, and the `rewardkit tiny` command that makes a fitting one.

    >>> from rewardkit.core.validation import ModelRef
    >>> tiny_hint(NamedModel("bleurt", "model", "lucadiliello/BLEURT-20", ModelRef("model", tiny="bleurt")))
    'point it at a local folder with --set bleurt.model=DIR (`rewardkit tiny DIR --bleurt` makes a small random BLEURT checkpoint to try the pipeline)'
    """
    where = f"point it at a local folder with --set {model.alias}.{model.field}=DIR"
    kind = model.ref.tiny
    if kind not in TINY_FLAGS:
        return where
    what = TINY_WHAT.get(kind, TINY_WHAT["rm"])
    return f"{where} (`rewardkit tiny DIR{TINY_FLAGS[kind]}` makes a small random {what} to try the pipeline)"


def check_spec_models(
    spec: ComposeSpec, where: str, last_hint: str | Callable[[NamedModel], str], timeout: float | None = None
) -> None:
    """Raise one ConfigError for the first model of the spec that does not resolve (`@stage` values skipped);
    `last_hint` is the final fix offered, or a function of the model that gives it."""
    seen: dict[tuple[str, str], str | None] = {}
    for m in spec_models(spec):
        if m.stage is not None:
            continue
        key = (m.value, m.ref.kind)
        if key not in seen:
            seen[key] = problem(m.value, m.ref.kind, timeout)
        if seen[key] is not None:
            raise ConfigError(
                f"{where}: rewards.{m.alias}.{m.field} {m.value!r} {seen[key]}.",
                hint=f"{fix_hint(m.value, last_hint(m) if callable(last_hint) else last_hint)}.",
            )


# Scoring outside training must say "no such model" at once (bert-score's own loader retries for about a minute).
SCORING_HUB_TIMEOUT = 1.0


def compose_checked(spec: SpecSource, overrides: Overrides | None = None, name: str | None = None) -> Composed:
    """`compose(spec, overrides=...)` after every model the spec names was found to resolve (about a second) and
    every judge's server answered (`judge_preflight`).

    What `rewardkit score`, `select` and `serve` use: a missing model or a judge server that cannot answer is one
    line with the fix, as in training's preflight.
    """
    from rewardkit.api import compose, load_compose_spec
    from rewardkit.rewards.judge_preflight import check_judges

    parsed = load_compose_spec(spec, overrides)
    timeout = None if os.environ.get("REWARDKIT_HUB_TIMEOUT") else min(hub_timeout(), SCORING_HUB_TIMEOUT)
    check_spec_models(parsed, parsed.where, tiny_hint, timeout)
    composed = compose(parsed, name=name)
    check_judges([composed], parsed.where)
    return composed
