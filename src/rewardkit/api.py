"""The public API: `get_*` and `list_*` for every registry kind, `build`, `compose` and spec loading.

Everything that turns a name or a spec into an object goes through one `Builder` over the plugin registry.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, overload

from .builder import Builder
from .composition import Composed, parse_combine, parse_spec
from .errors import ConfigError
from .plugins import get_registry
from .registry import BUILT_KINDS, KINDS
from .rewards.base import Reward, RewardParams
from .rewards.function_rewards import FunctionReward
from .specs import SPEC_SUFFIXES, load_file


ViewFn = Callable[[str], str | None]  # what a view is: the part of a text, or None when it is absent
GeneratorFn = Callable[..., list[dict]]  # a dataset generator: generator(n, seed=0) -> rows


class TokenizerLike(Protocol):
    """What a tokenizer is: anything with tokenize(text) -> tokens (rewardkit.Tokenizer is the base to subclass)."""

    def tokenize(self, text: str) -> list[str]: ...


def _wrap_reward(factory: Any, params: RewardParams) -> Reward:
    if isinstance(factory, type) and issubclass(factory, Reward):
        return factory(params)
    return FunctionReward(factory, params)  # a plain TRL-style function gains the reward contract


def builder() -> Builder:
    """The builder over the current registry (rebuilt when plugins change)."""
    return Builder(get_registry(), adapters={"rewards": (RewardParams, _wrap_reward)})


@overload
def build(kind: Literal["rewards"], spec: object, where: str | None = None) -> Reward: ...
@overload
def build(kind: Literal["views"], spec: object, where: str | None = None) -> ViewFn | None: ...
@overload
def build(kind: Literal["tokenizers"], spec: object, where: str | None = None) -> TokenizerLike: ...
@overload
def build(kind: Literal["generators"], spec: object, where: str | None = None) -> GeneratorFn: ...
@overload
def build(kind: str, spec: object, where: str | None = None) -> Any: ...
def build(kind: str, spec: object, where: str | None = None) -> Any:
    """Build any registry kind from a spec: build("views", [{"view": "after", "marker": "A:"}, "last_number"])."""
    if kind not in BUILT_KINDS:
        raise ConfigError(f"build: unknown kind {kind!r}. Hint: one of {', '.join(BUILT_KINDS)}.")
    return builder().build(kind, spec, where)


def get_reward(name: str, /, **params: object) -> Reward:
    """A reward instance by registered name, e.g. get_reward("math_exact_match", reference="solution")."""
    return build("rewards", {"use": name, **params})


def get_callback(name: str, /, **params: object) -> Any:
    """A trainer callback instance by registered name (a transformers.TrainerCallback, typed Any so that typing
    rewardkit never imports transformers)."""
    return build("callbacks", {"name": name, **params})


@overload
def get_view(spec: None, /) -> None: ...
@overload
def get_view(spec: str | dict | list | ViewFn, /, **params: object) -> ViewFn: ...
def get_view(spec: str | dict | list | ViewFn | None, /, **params: object) -> ViewFn | None:
    """A view (callable text -> str | None) from a name with params, a mapping, or a list (a chain)."""
    return build("views", {"view": spec, **params} if isinstance(spec, str) and params else spec)


def get_tokenizer(name: str, /, **params: object) -> TokenizerLike:
    """A tokenizer (object with .tokenize(text)) by registered name."""
    return build("tokenizers", {"tokenizer": name, **params})


def get_generator(name: str, /, **params: object) -> GeneratorFn:
    """A dataset generator (callable (n, seed) -> rows) by registered name."""
    return build("generators", {"generator": name, **params})


def get_preset(name: str) -> dict:
    """The compose spec registered as preset `name` (a copy)."""
    value = get_registry().get("presets", name).factory
    return load_file(value) if isinstance(value, (str, Path)) else copy.deepcopy(value)


def _describe(kind: str, schema: bool = True) -> list[dict]:
    return get_registry().describe(kind, schema)


def list_rewards() -> list[dict]:
    """Name, summary, source distribution, version and parameter schema of every reward."""
    return _describe("rewards")


def list_callbacks() -> list[dict]:
    """Like list_rewards, for callbacks."""
    return _describe("callbacks")


def list_views() -> list[dict]:
    """Like list_rewards, for views."""
    return _describe("views")


def list_tokenizers() -> list[dict]:
    """Like list_rewards, for tokenizers."""
    return _describe("tokenizers")


def list_presets() -> list[dict]:
    """Name, summary and source of every preset compose spec."""
    return [{k: v for k, v in e.items() if k != "params"} for e in _describe("presets")]


def list_generators() -> list[dict]:
    """Like list_rewards, for dataset generators."""
    return _describe("generators")


def catalog(schemas: bool = True) -> dict:
    """What `rewardkit list` reports: every kind, failed plugins and name conflicts (JSON-ready)."""
    from dataclasses import asdict

    registry = get_registry()
    out: dict = {kind: _describe(kind, schemas) for kind in KINDS}
    out["presets"] = list_presets()
    out["failed_plugins"] = [asdict(f) for f in registry.failed]
    out["conflicts"] = {k: v for k, v in registry.conflicts().items() if v}
    return out


def load_spec(spec: Any) -> tuple[dict, str]:
    """(spec dict, where) from a dict, a YAML/TOML/JSON path, or a preset name; the one spec loader."""
    if isinstance(spec, dict):
        return spec, "spec"
    if isinstance(spec, Path) or (isinstance(spec, str) and Path(spec).suffix.lower() in SPEC_SUFFIXES):
        return load_file(spec), str(spec)
    if isinstance(spec, str):
        return get_preset(spec), f"preset {spec!r}"
    raise ConfigError(f"compose: expected a dict, a path or a preset name, got {type(spec).__name__}. "
                      "Hint: compose('spec.yaml') or compose({'rewards': {...}}).")


def compose(spec: Any, name: str | None = None) -> Composed:
    """Build a Composed reward from a dict, a YAML/TOML/JSON path, or a preset name."""
    data, where = load_spec(spec)
    parsed = parse_spec(data, where)
    b = builder()
    components = {alias: b.build("rewards", params, f"{where}: rewards.{alias}")
                  for alias, params in parsed.rewards.items()}
    return Composed(components, parse_combine(parsed), none=parsed.none, name=name or parsed.name or "composed", text=parsed.combine)
