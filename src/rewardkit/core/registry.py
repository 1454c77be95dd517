"""The name registry: what each plugin registered, where it came from, and lookups that never guess."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Union, overload

from pydantic import BaseModel

from rewardkit.core.errors import AmbiguousNameError, ConfigError, UnknownNameError, closest


def _callable(obj: Any) -> str | None:
    return None if callable(obj) else "a callable"


def _tokenizer(obj: Any) -> str | None:
    return None if callable(getattr(obj, "tokenize", None)) else "an object with tokenize(text)"


def _callback(obj: Any) -> str | None:
    return None if obj is not None and not isinstance(obj, (int, float, bool)) else "a trainer callback"


@dataclass(frozen=True)
class Kind:
    """One kind of registered name: how specs name it, what its factories must build, how to get more."""

    plural: str  # the registry key and the hook's name (register_<plural>)
    singular: str
    name_key: str | None  # the key naming the entry in a mapping spec ({use: rouge1, ...}); None: not built
    base: str  # the class plugins subclass (or the shape they return), as users read it
    check: Callable[[Any], str | None] | None  # None when a built object is usable, else what it should be
    install_hint: str


KIND_TABLE: dict[str, Kind] = {
    k.plural: k
    for k in (
        Kind(
            "rewards",
            "reward",
            "use",
            "rewardkit.Reward (or a TRL-style reward function)",
            _callable,
            "Install a plugin that provides it (pip install <plugin>) or check `rewardkit list`.",
        ),
        Kind(
            "callbacks",
            "callback",
            "name",
            "transformers.TrainerCallback",
            _callback,
            "Install a plugin that provides it or check `rewardkit list`.",
        ),
        Kind(
            "views",
            "view",
            "view",
            "rewardkit.View",
            _callable,
            "Install a plugin that provides it (e.g. pip install ./plugins/rewardkit-korean for answer/reason).",
        ),
        Kind(
            "tokenizers",
            "tokenizer",
            "tokenizer",
            "rewardkit.Tokenizer",
            _tokenizer,
            "Install a plugin that provides it (e.g. pip install ./plugins/rewardkit-korean for korean_morpheme).",
        ),
        Kind(
            "presets",
            "preset",
            None,
            "a compose spec (dict or YAML/TOML/JSON path)",
            None,
            "Install the plugin that ships it, or pass a path to a YAML/TOML spec.",
        ),
        Kind(
            "generators",
            "generator",
            "generator",
            "a callable (n, seed) -> list[dict]",
            _callable,
            "Use a local data file (dataset.path) or install a plugin that provides the generator.",
        ),
    )
}
KINDS = tuple(KIND_TABLE)  # registration order: rewards first, as before
BUILT_KINDS = tuple(k for k, kind in KIND_TABLE.items() if kind.name_key is not None)


def kind_of(kind: str) -> Kind:
    """The table row of `kind` ('rewards', 'views', ...); a ConfigError for anything else."""
    found = KIND_TABLE.get(kind)
    if found is None:
        raise ConfigError(f"unknown kind {kind!r}", hint=f"one of {', '.join(KIND_TABLE)}")
    return found


def singular(kind: str) -> str:
    """'rewards' -> 'reward'."""
    return kind_of(kind).singular


@dataclass
class Entry:
    """One registered name."""

    kind: str
    name: str
    factory: Any
    source: str
    version: str
    summary: str = ""
    params: Any = None

    @property
    def qualified(self) -> str:
        return f"{self.source}:{self.name}"

    @property
    def lazy(self) -> bool:
        """Registered as a 'module:attr' string, imported on first use."""
        return isinstance(self.factory, str)

    def load(self) -> Any:
        """Return the factory, importing it first when it was registered as 'module:attr'."""
        if self.lazy:
            module, _, attr = self.factory.partition(":")
            try:
                self.factory = getattr(importlib.import_module(module), attr)
            except (Exception, SystemExit) as exc:  # any failure of the plugin's module, sys.exit() included
                raise ConfigError(
                    f"{singular(self.kind)} {self.qualified!r}: cannot import {self.factory!r} "
                    f"({type(exc).__name__}: {exc}).",
                    hint=f"reinstall {self.source}.",
                ) from None
        return self.factory

    def describe(self, schema: bool = True) -> dict:
        """JSON-ready name, source, summary and (unless schema=False, which is cheaper) the parameter schema."""
        params = None
        if schema and self.params is not None and hasattr(self.params, "model_json_schema"):
            try:
                params = self.params.model_json_schema()
            except Exception:  # a plugin's exotic field type must not break `rewardkit list`
                params = {"title": getattr(self.params, "__name__", "Params"), "description": "(no JSON schema)"}
        return {**_identity(self), "params": params}


@dataclass
class FailedPlugin:
    """A plugin that could not be imported or whose hook raised."""

    name: str
    version: str
    error: str


@dataclass
class PresetEntry:
    """One registered preset: a compose spec (a dict, or the path of a YAML/TOML/JSON file) by name."""

    name: str
    spec: dict | str | Path
    source: str
    version: str
    summary: str = ""
    kind: str = "presets"

    @property
    def qualified(self) -> str:
        return f"{self.source}:{self.name}"

    @property
    def factory(self) -> dict | str | Path:
        """The spec, under the name every other entry uses (older callers read `entry.factory`)."""
        return self.spec

    def describe(self, schema: bool = True) -> dict:
        """JSON-ready name, source and summary (a preset has no parameters)."""
        return _identity(self)


def _identity(entry: Entry | PresetEntry) -> dict:
    """What `rewardkit list` shows of every entry, presets included."""
    return {
        "name": entry.name,
        "qualified_name": entry.qualified,
        "summary": entry.summary,
        "source": entry.source,
        "version": entry.version,
    }


AnyEntry = Union[Entry, PresetEntry]
BUILTIN_SOURCE = "rewardkit"  # the source of rewardkit's own entries (default_plugins); its bare names win


def _check_entry(entry: AnyEntry) -> None:
    what = f"plugin {entry.source} registered {singular(entry.kind)} {entry.name!r}"
    if isinstance(entry, PresetEntry):
        if not isinstance(entry.spec, (dict, str, Path)):
            raise ConfigError(
                f"{what} as {entry.spec!r:.60}, which is not a spec dict or a path to a YAML/TOML/JSON file",
                hint="fix the plugin's register_presets hook.",
            )
        return
    factory = entry.factory
    if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
        raise ConfigError(
            f"{what} as {factory!r:.60}, which is not a class, a function or a lazy 'module:attr' string",
            hint=f"fix the plugin's register_{entry.kind} hook.",
        )
    params = entry.params
    if params is not None and not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise ConfigError(
            f"{what} with params {params!r:.60}, which is not a pydantic model class",
            hint="pass params=<a rewardkit.Params subclass> (or a `Params` class attribute), or none.",
        )


@dataclass
class Registry:
    """All registered names by kind, including conflicting registrations."""

    entries: dict[str, dict[str, list[AnyEntry]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    failed: list[FailedPlugin] = field(default_factory=list)

    def add(self, entry: AnyEntry) -> None:
        if not isinstance(entry.name, str) or not entry.name or ":" in entry.name:
            raise ConfigError(
                f"plugin {entry.source} registered an invalid {singular(entry.kind)} name {entry.name!r}.",
                hint="names are non-empty strings without ':'.",
            )
        _check_entry(entry)
        self.entries[entry.kind].setdefault(entry.name, []).append(entry)

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def describe(self, kind: str, schema: bool = True) -> list[dict]:
        """Every entry of `kind`, sorted by name, as JSON-ready dicts."""
        return [e.describe(schema) for name in self.names(kind) for e in self.entries[kind][name]]

    def shadowing(self) -> list[str]:
        """One line per plugin entry that reuses a built-in's name: the bare name stays the built-in's."""
        return [
            f"plugin {e.source} registers {singular(kind)} {name!r}, a built-in name: {name!r} stays rewardkit's; "
            f"use {e.qualified!r} for the plugin's."
            for kind, by_name in self.entries.items()
            for name, found in by_name.items()
            if any(b.source == BUILTIN_SOURCE for b in found)
            for e in found
            if e.source != BUILTIN_SOURCE
        ]

    def conflicts(self) -> dict[str, dict[str, list[str]]]:
        return {
            kind: {name: [e.qualified for e in found] for name, found in by_name.items() if len(found) > 1}
            for kind, by_name in self.entries.items()
        }

    @overload
    def get(self, kind: Literal["presets"], name: str) -> PresetEntry: ...  # type: ignore[overload-overlap]

    @overload
    def get(self, kind: str, name: str) -> Entry: ...

    def get(self, kind: str, name: str) -> AnyEntry:
        """Look up a bare or qualified ('<distribution>:<name>') name."""
        if not isinstance(name, str):
            raise ConfigError(
                f"A {singular(kind)} name must be a string, got {name!r}.",
                hint=f"available: {', '.join(self.names(kind)) or '(none)'}.",
            )
        source, sep, bare = name.rpartition(":")
        found = self.entries[kind].get(bare if sep else name, [])
        if sep:
            found = [e for e in found if e.source == source]
        if len(found) == 1:
            return found[0]
        builtin = [e for e in found if e.source == BUILTIN_SOURCE]
        if not sep and len(builtin) == 1:  # a plugin reusing a built-in's name never breaks configs using it
            return builtin[0]
        if len(found) > 1:
            options = ", ".join(e.qualified for e in found)
            raise AmbiguousNameError(
                f"{singular(kind).capitalize()} {name!r} is registered by several plugins: {options}.",
                hint="use one of the qualified names.",
            )
        available = ", ".join(self.names(kind)) or "(none)"
        raise UnknownNameError(
            f"Unknown {singular(kind)} {name!r}.{closest(bare or name, self.names(kind))} Available: {available}.",
            hint=kind_of(kind).install_hint,
        )
