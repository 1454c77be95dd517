"""The public API: `get_*` and `list_*` for every registry kind, `build`, `compose` and spec loading.

Everything that turns a name or a spec into an object goes through one `Builder` over the plugin registry.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, overload

from rewardkit.composition.composed import Composed
from rewardkit.composition.spec import ComposeSpec, callable_path, parse_combine
from rewardkit.core.builder import Builder
from rewardkit.core.errors import ConfigError
from rewardkit.core.plugins import get_registry
from rewardkit.core.registry import BUILT_KINDS, KINDS
from rewardkit.core.specs import SPEC_SUFFIXES, load_file, parse_assignment
from rewardkit.core.validation import nested_fields, validate
from rewardkit.rewards.base import Reward, RewardParams
from rewardkit.rewards.function_rewards import FunctionReward
from rewardkit.rewards.user_code import ImportedFunctionReward, UserCallable, is_import_path

ViewFn = Callable[[str], str | None]  # what a view is: the part of a text, or None when it is absent
GeneratorFn = Callable[..., list[dict]]  # a dataset generator: generator(n, seed=0) -> rows
# What compose() and load_compose_spec() take: a spec mapping, a YAML/TOML/JSON file, a preset name or a parsed spec.
SpecSource = dict[str, Any] | str | Path | ComposeSpec
# Changes on top of a spec: {"<alias>.<param>": value} or ["<alias>.<param>=value", ...] (as `--set` gives them).
Overrides = dict[str, Any] | list[str] | tuple[str, ...]


class TokenizerLike(Protocol):
    """What a tokenizer is: anything with tokenize(text) -> tokens (rewardkit.Tokenizer is the base to subclass)."""

    def tokenize(self, text: str) -> list[str]: ...


def _wrap_reward(factory: Any, params: RewardParams, own: dict) -> Reward:
    if isinstance(factory, type) and issubclass(factory, Reward):
        return factory(params)
    if isinstance(factory, type):  # a factory class (the hookspec's factory(**params)): its instance is the reward
        factory = factory(**own)
    return FunctionReward(factory, params)  # a plain TRL-style callable gains the reward contract


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
        raise ConfigError(f"build: unknown kind {kind!r}.", hint=f"one of {', '.join(BUILT_KINDS)}.")
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


MAX_PRESET_DEPTH = 8  # a preset whose spec names a preset ...: bounded, never a loop


def _raw_spec(spec: object) -> tuple[object, str]:
    """(spec data, where) of a dict/ComposeSpec, a YAML/TOML/JSON path or a preset name, not yet checked."""
    if isinstance(spec, (dict, ComposeSpec)):
        return spec, "spec"
    if isinstance(spec, Path) or (isinstance(spec, str) and Path(spec).suffix.lower() in SPEC_SUFFIXES):
        return load_file(spec), str(spec)
    if isinstance(spec, str):
        return get_preset(spec), f"preset {spec!r}"
    raise ConfigError(
        f"compose: expected a dict, a path or a preset name, got {type(spec).__name__}.",
        hint="compose('spec.yaml') or compose({'rewards': {...}}).",
    )


def load_compose_spec(spec: SpecSource, overrides: Overrides | None = None, _depth: int = 0) -> ComposeSpec:
    """The one spec loader: a dict, a ComposeSpec, a file or a preset name, normalised into a ComposeSpec.

    `{preset: <name or file>, set: {"<alias>.<param>": value, ...}}` is that preset with parameters changed;
    `overrides` (a mapping like `set:`, or ["alias.param=value", ...] as `--set` gives them) applies on top.

    >>> load_compose_spec({"em": "exact_match"}, overrides=["em.reference=gold"]).rewards["em"]
    {'use': 'exact_match', 'name': 'em', 'reference': 'gold'}
    """
    data, where = _raw_spec(spec)
    if isinstance(data, dict) and "preset" in data:
        extra = set(data) - {"preset", "set"}
        if extra or not isinstance(data["preset"], (str, Path)) or _depth >= MAX_PRESET_DEPTH:
            raise ConfigError(
                f"{where}: a preset with changes is {{preset: <name or file>, set: {{<alias>.<param>: "
                f"value}}}}, got keys {sorted(map(str, data))}.",
                hint="put other changes in set:.",
            )
        base = load_compose_spec(data["preset"], _depth=_depth + 1)
        _apply(base, data.get("set"), f"{where}: set")
        parsed = base
    else:
        parsed = ComposeSpec.parse(copy.deepcopy(data) if isinstance(data, dict) else data, where)
        if isinstance(data, ComposeSpec):
            parsed = parsed.model_copy(deep=True)
    _apply(parsed, overrides, "--set")
    return parsed


def _apply(spec: ComposeSpec, changes: object, where: str) -> None:
    if changes is None:
        return
    if isinstance(changes, (list, tuple)):
        changes = dict(parse_assignment(item) for item in changes)
    if not isinstance(changes, dict):
        raise ConfigError(
            f"{where}: expected a mapping of <alias>.<param>: value, got {type(changes).__name__}.",
            hint="set: {bertscore.model_type: ./my-bert}.",
        )
    for key, value in changes.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}: key {key!r} must be a dotted string.", hint="bertscore.model_type.")
        spec.set_key(key, copy.deepcopy(value))


def load_spec(spec: SpecSource) -> tuple[dict[str, Any], str]:
    """(normalised spec dict, where) from a dict, a YAML/TOML/JSON path, or a preset name."""
    parsed = load_compose_spec(spec)
    return parsed.to_dict(), parsed.where


def compose(spec: SpecSource, name: str | None = None, *, overrides: Overrides | None = None) -> Composed:
    """Build a Composed reward from a dict, a YAML/TOML/JSON path, or a preset name.

    A reward entry may be a Python callable (function, callable instance, functools.partial, async function) or
    `use: my_pkg.rewards:func` / `use: path/to/rewards.py:func`; it gets the contract of a registered function
    reward (see `rewards.function_rewards.FunctionReward`). `overrides` as in `load_compose_spec`.
    """
    parsed = load_compose_spec(spec, overrides)
    b = builder()
    components = {
        alias: _build_reward(b, params, f"{parsed.where}: rewards.{alias}") for alias, params in parsed.rewards.items()
    }
    return Composed(
        components, parse_combine(parsed), none=parsed.none, name=name or parsed.name or "composed", text=parsed.combine
    )


def _registered(name: str) -> bool:
    try:
        get_registry().get("rewards", name)
    except ConfigError:
        return False
    return True


def code_uses(spec: ComposeSpec) -> dict[str, str]:
    """{alias: use} of the entries whose `use:` names Python code to import (`module:f`, `path/file.py:f`), not a
    registered reward: what a spec read from a run folder must not run without the user's word."""
    return {
        alias: params["use"]
        for alias, params in spec.rewards.items()
        if isinstance(params["use"], str) and is_import_path(params["use"]) and not _registered(params["use"])
    }


def endpoints(spec: ComposeSpec) -> dict[str, tuple[str, Any]]:
    """{alias: (key, address)} of the entries that send rows over the network (`base_url:` of `judge`, `url:` of
    `remote`): what a spec read from a run folder must not send to without the user's word."""
    return {
        alias: (key, params[key])
        for alias, params in spec.rewards.items()
        for key in ("base_url", "url")
        if params.get(key) is not None
    }


def _build_reward(b: Builder, params: dict, where: str) -> Reward:
    """One component: a registered reward by name, else an inline callable or an import path, wrapped."""
    use = params["use"]
    if isinstance(use, str):
        if not is_import_path(use) or _registered(use):  # 'dist:name' of an installed plugin stays a name
            return b.build("rewards", params, where)
        source = UserCallable.resolve(use, where)  # refused here before any of its code runs
        use = source.load(where)
    else:
        source = None
    rest = {k: v for k, v in params.items() if k != "use"}
    if isinstance(use, Reward):
        extra = sorted(set(rest) - {"name"})
        if extra:
            raise ConfigError(
                f"{where}: {use!r} is a built reward; parameters {extra} cannot be added to it.",
                hint="pass them when you build it, or give the plain function.",
            )
        return use
    owner = f"{where} (callable {callable_path(use)})"
    validate(RewardParams, rest, owner)
    for field, kind in nested_fields(RewardParams).items():
        if rest.get(field) is not None:
            rest[field] = b.build(kind, rest[field], f"{owner}.{field}")
    try:
        return FunctionReward(use, **rest) if source is None else ImportedFunctionReward(source, **rest)
    except ConfigError as exc:
        raise exc.within(where) from None
