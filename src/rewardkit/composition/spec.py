"""The compose spec: one pydantic model, normalised at load, that every consumer reads."""

from __future__ import annotations

import math
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from rewardkit.composition import expr
from rewardkit.core.errors import ConfigError, closest

RESERVED = ("rewards", "combine", "none", "name", "preset", "set")
_RESERVED = set(RESERVED)


class ComposeSpec(BaseModel):
    """A compose spec normalised at load: the one shape every consumer reads (components not yet built).

    Accepted on input (`ComposeSpec.parse`): `{rewards: {alias: entry}, combine?, none?, name?}` or the flat
    `{alias: entry, combine?, ...}`; an entry is a reward name, `{use: name, ...params, weight?}`, a Python
    callable, or `{use: callable, ...params}`. Normalised: every entry is a `{"use": ..., "name": alias, ...}`
    mapping, per-reward weights are folded into `combine`. `preset`/`set` are resolved by `rewardkit.load_spec`.

    >>> ComposeSpec.parse({"em": "exact_match", "short": {"use": "brevity", "weight": 0.5}}).combine
    '1.0*em + 0.5*short'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    rewards: dict[str, dict[str, Any]]
    combine: str
    none: Literal["zero", "propagate"] = "zero"
    name: Optional[str] = None
    where: str = Field("spec", exclude=True)

    @classmethod
    def parse(cls, data: object, where: str = "spec") -> "ComposeSpec":
        """Check and normalise a spec's structure (aliases, weights, none) without building any reward."""
        if isinstance(data, ComposeSpec):
            return data
        return _parse(data, where)

    def to_dict(self, portable: bool = False) -> dict:
        """The nested spec as a plain dict (`parse(to_dict())` is this spec again).

        `portable=True`: inline callables are written as their import path (`module:name`), so the dict can be
        recorded as JSON (scores.json) and read back by `rewardkit select`.
        """
        rewards = {
            alias: (
                {**entry, "use": callable_path(entry["use"])} if portable and callable(entry["use"]) else dict(entry)
            )
            for alias, entry in self.rewards.items()
        }
        out: dict = {"rewards": rewards, "combine": self.combine, "none": self.none}
        if self.name is not None:
            out["name"] = self.name
        return out

    def set_key(self, key: str, value: object) -> None:
        """Set one dotted key: `alias.param[.sub]` (or `rewards.alias.param`), or `combine` / `none` / `name`."""
        path = key.split(".")
        if path[0] == "rewards" and len(path) > 1:
            path = path[1:]
        if len(path) == 1 and path[0] in ("combine", "none", "name"):
            checked = _parse({**self.to_dict(), path[0]: value}, self.where)
            self.combine, self.none, self.name = checked.combine, checked.none, checked.name
            return
        alias = path[0]
        if alias not in self.rewards or len(path) < 2 or not all(path):
            raise ConfigError(
                f"{self.where}: set {key!r}: no reward {alias!r} in this spec.{closest(alias, list(self.rewards))}",
                hint=f"keys are <alias>.<parameter>, aliases here: {', '.join(self.rewards)} (or combine, none, name).",
            )
        node: Any = self.rewards[alias]
        for depth, part in enumerate(path[1:-1], start=1):
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"{self.where}: set {key!r}: {'.'.join(path[: depth + 1])} is {child!r:.40}, not a mapping.",
                    hint=f"set it whole ({'.'.join(path[: depth + 1])}: ...).",
                )
            node = child
        if path[-1] == "weight":
            raise ConfigError(
                f"{self.where}: set {key!r}: weights are folded into `combine` when a spec is loaded.",
                hint=f"set combine (now {self.combine!r}).",
            )
        node[path[-1]] = value


def callable_path(func: object) -> str:
    """`module:qualname` of a callable (a partial's function, an instance's class), for records and messages."""
    import functools

    target = func.func if isinstance(func, functools.partial) else func
    if not hasattr(target, "__qualname__"):
        target = type(target)
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', type(target).__name__)}"


def parse_combine(spec: ComposeSpec) -> expr.Node:
    """The spec's expression tree; every declared reward must be used."""
    tree = expr.parse(spec.combine, set(spec.rewards))
    unused = set(spec.rewards) - expr.aliases(tree)
    if unused:
        raise ConfigError(
            f"{spec.where}: rewards {sorted(unused)} are declared but not used in combine {spec.combine!r}.",
            hint="use them or remove them.",
        )
    return tree


def parse_spec(data: object, where: str = "spec") -> ComposeSpec:
    """Check a compose spec's structure (aliases, weights, none) without building any reward."""
    return ComposeSpec.parse(data, where)


def _entry(alias: Any, entry: Any, where: str) -> tuple[dict, float | None]:
    """One normalised reward entry {"use": ..., "name": alias, ...} and its `weight:` (None when not given)."""
    if not isinstance(alias, str) or not alias.isidentifier() or alias in expr.FUNCTIONS:
        raise ConfigError(
            f"{where}: alias {alias!r} must be an identifier (letters, digits, _) and not "
            f"one of {sorted(expr.FUNCTIONS)}."
        )
    if isinstance(entry, str) or (callable(entry) and not isinstance(entry, dict)):
        entry = {"use": entry}
    use = entry.get("use") if isinstance(entry, dict) else None
    if not (isinstance(use, str) and use) and not callable(use):
        raise ConfigError(
            f"needs 'use: <reward name>' (or a Python callable), got {entry!r:.80}.",
            owner=where,
            path=f"rewards.{alias}",
            hint="{use: exact_match}, or {use: my_module:my_function}.",
        )
    params = dict(entry)
    weight = None
    if "weight" in params:
        raw = params.pop("weight")
        try:  # float(): an int too large for a float (a 400-digit YAML literal) is refused, not an OverflowError
            weight = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None
        except OverflowError:
            weight = None
        if weight is None or not math.isfinite(weight) or weight < 0:
            raise ConfigError(
                f"{raw!r:.40} is not a finite number >= 0.",
                owner=where,
                path=f"rewards.{alias}.weight",
                hint='for a penalty write it in `combine:` (e.g. "a - b").',
            )
    params.setdefault("name", alias)
    return params, weight


def _parse(data: Any, where: str) -> ComposeSpec:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: a compose spec is a mapping, got {type(data).__name__}.",
            hint="rewards: {em: {use: exact_match}}.",
        )
    if "preset" in data or "set" in data:
        raise ConfigError(
            f"{where}: `preset:` / `set:` are read by rewardkit.load_spec / compose, not here.",
            hint="compose({'preset': 'official', 'set': {...}}).",
        )
    nested = "rewards" in data
    entries = data["rewards"] if nested else {k: v for k, v in data.items() if k not in _RESERVED}
    unknown_top = set(data) - _RESERVED if nested else set()
    if unknown_top:
        raise ConfigError(
            f"{where}: unknown top-level keys {sorted(map(str, unknown_top))}.",
            hint=f"allowed are {sorted(_RESERVED)}.",
        )
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{where}: no rewards.", hint="rewards: {em: {use: exact_match}}.")
    rewards: dict[str, dict] = {}
    weights: dict[str, float] = {}
    for alias, entry in entries.items():
        rewards[alias], weight = _entry(alias, entry, where)
        if weight is not None:
            weights[alias] = weight
    text = data.get("combine")
    if text is not None and weights:
        raise ConfigError(
            f"{where}: both `combine` and per-reward `weight` given ({sorted(weights)}).",
            hint="put the weights into the expression.",
        )
    if text is None:
        text = " + ".join(f"{weights.get(a, 1.0)!r}*{a}" for a in rewards)
    if not isinstance(text, str):
        expr.parse(text, set(rewards))  # raises the expression error ("must be an expression string, got int")
    none = data.get("none", "zero")
    if none not in ("zero", "propagate"):
        raise ConfigError(
            f"{none!r} is not valid.{closest(str(none), ['zero', 'propagate'])}",
            owner=where,
            path="none",
            hint="none: zero | propagate.",
        )
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(f"{name!r} must be a non-empty string.", owner=where, path="name", hint="name: my_reward.")
    return ComposeSpec(rewards=rewards, combine=text, none=none, name=name, where=where)
