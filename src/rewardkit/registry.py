"""The name registry: what each plugin registered, where it came from, and lookups that never guess."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .errors import AmbiguousNameError, ConfigError, UnknownNameError, closest

KINDS = ("rewards", "callbacks", "views", "tokenizers", "presets", "generators")

_INSTALL_HINT = {
    "rewards": "Install a plugin that provides it (pip install <plugin>) or check `rewardkit list`.",
    "callbacks": "Install a plugin that provides it or check `rewardkit list`.",
    "views": "Install a plugin that provides it (e.g. pip install ./plugins/rewardkit-korean for answer/reason).",
    "tokenizers": "Install a plugin that provides it (e.g. pip install ./plugins/rewardkit-korean for korean_morpheme).",
    "presets": "Install the plugin that ships it, or pass a path to a YAML/TOML spec.",
    "generators": "Use a local data file (dataset.path) or install a plugin that provides the generator.",
}


def singular(kind: str) -> str:
    """'rewards' -> 'reward'."""
    return kind[:-1]


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
        return isinstance(self.factory, str) and self.kind != "presets"

    def load(self) -> Any:
        """Return the factory, importing it first when it was registered as 'module:attr'."""
        if self.lazy:
            module, _, attr = self.factory.partition(":")
            try:
                self.factory = getattr(importlib.import_module(module), attr)
            except (Exception, SystemExit) as exc:  # any failure of the plugin's module, sys.exit() included
                raise ConfigError(f"{singular(self.kind)} {self.qualified!r}: cannot import {self.factory!r} "
                                  f"({type(exc).__name__}: {exc}). Hint: reinstall {self.source}.") from None
        return self.factory

    def describe(self, schema: bool = True) -> dict:
        """JSON-ready name, source, summary and (unless schema=False, which is cheaper) the parameter schema."""
        params = None
        if schema and self.params is not None and hasattr(self.params, "model_json_schema"):
            try:
                params = self.params.model_json_schema()
            except Exception:  # a plugin's exotic field type must not break `rewardkit list`
                params = {"title": getattr(self.params, "__name__", "Params"), "description": "(no JSON schema)"}
        return {"name": self.name, "qualified_name": self.qualified, "summary": self.summary,
                "source": self.source, "version": self.version, "params": params}


@dataclass
class FailedPlugin:
    """A plugin that could not be imported or whose hook raised."""

    name: str
    version: str
    error: str


def _check_factory(entry: Entry) -> None:
    factory = entry.factory
    if entry.kind == "presets":
        ok = isinstance(factory, (dict, str, Path))
        need = "a spec dict or a path to a YAML/TOML/JSON file"
    else:
        ok = callable(factory) or (isinstance(factory, str) and ":" in factory)
        need = "a class, a function or a lazy 'module:attr' string"
    if not ok:
        raise ConfigError(f"plugin {entry.source} registered {singular(entry.kind)} {entry.name!r} as "
                          f"{factory!r:.60}, which is not {need}. Hint: fix the plugin's register_{entry.kind} hook.")
    params = entry.params
    if params is not None and not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise ConfigError(f"plugin {entry.source} registered {singular(entry.kind)} {entry.name!r} with params "
                          f"{params!r:.60}, which is not a pydantic model class. Hint: pass params=<a "
                          "rewardkit.Params subclass> (or a `Params` class attribute), or none.")


@dataclass
class Registry:
    """All registered names by kind, including conflicting registrations."""

    entries: dict[str, dict[str, list[Entry]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    failed: list[FailedPlugin] = field(default_factory=list)

    def add(self, entry: Entry) -> None:
        if not isinstance(entry.name, str) or not entry.name or ":" in entry.name:
            raise ConfigError(f"plugin {entry.source} registered an invalid {singular(entry.kind)} name "
                              f"{entry.name!r}. Hint: names are non-empty strings without ':'.")
        _check_factory(entry)
        self.entries[entry.kind].setdefault(entry.name, []).append(entry)

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def describe(self, kind: str, schema: bool = True) -> list[dict]:
        """Every entry of `kind`, sorted by name, as JSON-ready dicts."""
        return [e.describe(schema) for name in self.names(kind) for e in self.entries[kind][name]]

    def conflicts(self) -> dict[str, dict[str, list[str]]]:
        return {
            kind: {name: [e.qualified for e in found] for name, found in by_name.items() if len(found) > 1}
            for kind, by_name in self.entries.items()
        }

    def get(self, kind: str, name: str) -> Entry:
        """Look up a bare or qualified ('<distribution>:<name>') name."""
        if not isinstance(name, str):
            raise ConfigError(f"A {singular(kind)} name must be a string, got {name!r}. "
                              f"Hint: available: {', '.join(self.names(kind)) or '(none)'}.")
        source, sep, bare = name.rpartition(":")
        found = self.entries[kind].get(bare if sep else name, [])
        if sep:
            found = [e for e in found if e.source == source]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            options = ", ".join(e.qualified for e in found)
            raise AmbiguousNameError(f"{singular(kind).capitalize()} {name!r} is registered by several plugins: "
                                     f"{options}. Hint: use one of the qualified names.")
        available = ", ".join(self.names(kind)) or "(none)"
        raise UnknownNameError(f"Unknown {singular(kind)} {name!r}.{closest(bare or name, self.names(kind))} "
                               f"Available: {available}. Hint: {_INSTALL_HINT[kind]}")
