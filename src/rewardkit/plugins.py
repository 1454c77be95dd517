"""Plugin loading: built-in hook modules and entry points (group 'rewardkit'), each isolated from the others."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .registry import KINDS, Entry, FailedPlugin, Registry

# Built-ins register through the same hooks as plugins, named by module (like pytest's default_plugins).
BUILTIN_PLUGINS = ("rewardkit.rewards", "rewardkit.views", "rewardkit.text_tokenizers", "rewardkit.callbacks",
                   "rewardkit.train.generators")
# A plugin that exits (sys.exit) or raises any other BaseException is a failing plugin, not the end of the
# program; only Ctrl-C (KeyboardInterrupt) still ends it.
PLUGIN_FAILURES = (BaseException,)

pm = pluggy.PluginManager("rewardkit")
pm.add_hookspecs(hookspecs)

_registry: Registry | None = None
_failed: list[FailedPlugin] = []
_sources: dict[str, tuple[str, str]] = {}  # plugin name in pm -> (source, version)
_loaded = False


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _wanted() -> set[str] | None:
    """Distribution names allowed by REWARDKIT_LOAD_PLUGINS (None = all)."""
    value = os.environ.get("REWARDKIT_LOAD_PLUGINS")
    if value is None:
        return None
    return {part.strip().lower().replace("_", "-") for part in value.split(",") if part.strip()}


def _strict() -> bool:
    return os.environ.get("REWARDKIT_STRICT_PLUGINS", "") not in ("", "0", "false")


def _fail(failed: list[FailedPlugin], name: str, version: str, exc: BaseException, where: str) -> None:
    """Record and report a failing plugin (one stderr line); re-raise under REWARDKIT_STRICT_PLUGINS."""
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SystemExit):
        text = f"SystemExit: the plugin called sys.exit({exc.code!r})"
    failed.append(FailedPlugin(name, version, text))
    print(f"rewardkit: plugin {name} {version} failed {where}: {text}", file=sys.stderr)
    if _strict():
        raise exc


def load_plugins() -> None:
    """Register the built-ins, then every allowed entry point, one try/except each."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_PLUGINS:
        register_plugin(importlib.import_module(module), name=module, source="rewardkit")
    wanted = _wanted()
    seen: set[str] = set()
    for ep in metadata.entry_points(group="rewardkit"):
        dist = ep.dist.name if ep.dist is not None else ep.module
        key = f"{dist}:{ep.name}"
        if key in seen:  # the same distribution can be visible twice on sys.path
            continue
        seen.add(key)
        if wanted is not None and dist.lower().replace("_", "-") not in wanted:
            continue
        try:
            register_plugin(ep.load(), name=key, source=dist)
        except PLUGIN_FAILURES as exc:  # a broken plugin must not break the others
            _fail(_failed, dist, _version(dist), exc, "to load")


def register_plugin(plugin: Any, name: str, source: str | None = None) -> None:
    """Register a plugin object (module or instance) under `name`; `source` is shown as its distribution."""
    global _registry
    pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        pm.unregister(name=name)
        raise
    src = source or name
    _sources[name] = (src, _version(src))
    _registry = None


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with `register_plugin`."""
    global _registry
    pm.unregister(name=name)
    _sources.pop(name, None)
    _registry = None


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) if not isinstance(obj, (str, dict)) else None
    return doc.strip().splitlines()[0] if doc else ""


def _registrar(registry: Registry, kind: str, source: str, version: str) -> hookspecs.Register:
    def register(name: str, factory: Any, *, params: Any = None, summary: str | None = None) -> None:
        if params is None and not isinstance(factory, (str, dict)):
            params = getattr(factory, "Params", None)
        registry.add(Entry(kind, name, factory, source, version, summary or _summary(factory), params))

    return register


def get_registry() -> Registry:
    """Build (once) the registry by calling each plugin's hook implementations separately."""
    global _registry
    load_plugins()
    if _registry is not None:
        return _registry
    registry = Registry(failed=list(_failed))
    # Each impl is called on its own (pluggy would stop at the first raising one), in registration order:
    # built-ins first, so a plugin reusing a name shows up as a conflict, never as a silent override.
    for kind in KINDS:
        for impl in getattr(pm.hook, f"register_{kind}").get_hookimpls():
            source, version = _sources.get(impl.plugin_name, (impl.plugin_name, "0+unknown"))
            try:
                impl.function(register=_registrar(registry, kind, source, version))
            except PLUGIN_FAILURES as exc:
                _fail(registry.failed, source, version, exc, f"in register_{kind}")
    _registry = registry
    return registry
