"""The name registry: what each plugin registered, where it came from, and lookups that never guess."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from .errors import AmbiguousNameError, ConfigError, UnknownNameError, closest

KINDS = ("rewards", "callbacks", "views", "tokenizers", "presets")

_INSTALL_HINT = {
    "rewards": "Install a plugin that provides it (pip install <plugin>) or check `rewardkit list`.",
    "callbacks": "Install a plugin that provides it or check `rewardkit list`.",
    "views": "Install a plugin that provides it (e.g. pip install ./plugins/rewardkit-korean for answer/reason).",
    "tokenizers": "Install a plugin that provides it (e.g. pip install ./plugins/rewardkit-korean for korean_morpheme).",
    "presets": "Install the plugin that ships it, or pass a path to a YAML/TOML spec.",
}


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

    def load(self) -> Any:
        """Return the factory, importing it first when it was registered as 'module:attr'."""
        if isinstance(self.factory, str) and ":" in self.factory and self.kind != "presets":
            module, _, attr = self.factory.partition(":")
            self.factory = getattr(importlib.import_module(module), attr)
        return self.factory

    def describe(self) -> dict:
        schema = None
        if self.params is not None and hasattr(self.params, "model_json_schema"):
            schema = self.params.model_json_schema()
        return {
            "name": self.name,
            "qualified_name": self.qualified,
            "summary": self.summary,
            "source": self.source,
            "version": self.version,
            "params": schema,
        }


@dataclass
class FailedPlugin:
    """A plugin that could not be imported or whose hook raised."""

    name: str
    version: str
    error: str


@dataclass
class Registry:
    """All registered names by kind, including conflicting registrations."""

    entries: dict[str, dict[str, list[Entry]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    failed: list[FailedPlugin] = field(default_factory=list)

    def add(self, entry: Entry) -> None:
        if not isinstance(entry.name, str) or not entry.name or ":" in entry.name:
            raise ConfigError(f"{entry.source} registered an invalid {entry.kind[:-1]} name {entry.name!r}. "
                              "Hint: names are non-empty strings without ':'.")
        self.entries[entry.kind].setdefault(entry.name, []).append(entry)

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def conflicts(self) -> dict[str, dict[str, list[str]]]:
        return {
            kind: {name: [e.qualified for e in found] for name, found in by_name.items() if len(found) > 1}
            for kind, by_name in self.entries.items()
        }

    def get(self, kind: str, name: str) -> Entry:
        """Look up a bare or qualified ('<distribution>:<name>') name."""
        if not isinstance(name, str):
            raise ConfigError(f"A {kind[:-1]} name must be a string, got {name!r}.")
        source, sep, bare = name.rpartition(":")
        found = self.entries[kind].get(bare if sep else name, [])
        if sep:
            found = [e for e in found if e.source == source]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            options = ", ".join(e.qualified for e in found)
            raise AmbiguousNameError(
                f"{kind[:-1].capitalize()} {name!r} is registered by several plugins: {options}. "
                f"Hint: use one of the qualified names."
            )
        available = ", ".join(self.names(kind)) or "(none)"
        raise UnknownNameError(
            f"Unknown {kind[:-1]} {name!r}.{closest(bare or name, self.names(kind))} Available: {available}. "
            f"Hint: {_INSTALL_HINT[kind]}"
        )
