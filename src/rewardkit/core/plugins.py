"""Plugin loading: built-in hook modules and entry points (group 'rewardkit'), each isolated from the others.

The state (pluggy's manager, where each plugin came from, the failures, the built registry) lives in a
`Plugins` object, like pytest's `PytestPluginManager`. `DEFAULT` is the process's instance; `active()` is the
one the API uses, which `using(Plugins(...))` replaces for a block (tests build their own instead of patching
module state). The module-level functions act on `active()`.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import inspect
import os
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from rewardkit.core import hookspecs
from rewardkit.core.hookspecs import Factory
from rewardkit.core.registry import BUILTIN_SOURCE, KINDS, Entry, FailedPlugin, PresetEntry, Registry

# Built-ins register through the same hooks as plugins, named by module (like pytest's default_plugins).
BUILTIN_PLUGINS = tuple(
    f"rewardkit.default_plugins.{name}" for name in ("rewards", "views", "text_tokenizers", "callbacks", "generators")
)
# A plugin that exits (sys.exit) or raises any other BaseException is a failing plugin, not the end of the
# program; only Ctrl-C (KeyboardInterrupt) still ends it.
PLUGIN_FAILURES = (BaseException,)
EntryPoints = Callable[[], Iterable[Any]]


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


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) if not isinstance(obj, (str, dict)) else None
    return doc.strip().splitlines()[0] if doc else ""


class Registrar:
    """What each hook is given: `register(name, factory, ...)` for the hook's own kind, and one typed
    registrar per kind (`register.reward(...)`, `register.view(...)`, ..., `register.preset(name, spec)`)."""

    def __init__(self, registry: Registry, kind: str, source: str, version: str) -> None:
        self._registry, self._kind, self._source, self._version = registry, kind, source, version

    def __call__(self, name: str, factory: object, *, params: type | None = None, summary: str | None = None) -> None:
        """Register `name` as the hook's kind (the compatibility form every plugin written so far uses)."""
        if self._kind == "presets":
            self.preset(name, factory, summary=summary)  # type: ignore[arg-type]  # the registry checks it
        else:
            self._add(self._kind, name, factory, params, summary)

    def _add(self, kind: str, name: str, factory: object, params: type | None, summary: str | None) -> None:
        if params is None and not isinstance(factory, (str, dict)):
            params = getattr(factory, "Params", None)
        self._registry.add(
            Entry(kind, name, factory, self._source, self._version, summary or _summary(factory), params)
        )

    def reward(self, name: str, factory: Factory, *, params: type | None = None, summary: str | None = None) -> None:
        """A Reward subclass, a plain TRL-style reward function, or a lazy 'module:attr' string."""
        self._add("rewards", name, factory, params, summary)

    def view(self, name: str, factory: Factory, *, params: type | None = None, summary: str | None = None) -> None:
        """A view factory: factory(**params) -> callable(text) -> str | None (subclass rewardkit.View)."""
        self._add("views", name, factory, params, summary)

    def tokenizer(self, name: str, factory: Factory, *, params: type | None = None, summary: str | None = None) -> None:
        """A tokenizer factory: factory(**params) -> object with .tokenize(text) (subclass rewardkit.Tokenizer)."""
        self._add("tokenizers", name, factory, params, summary)

    def callback(self, name: str, factory: Factory, *, params: type | None = None, summary: str | None = None) -> None:
        """A trainer-callback factory (a class, or a lazy 'module:attr' string with `params=`)."""
        self._add("callbacks", name, factory, params, summary)

    def generator(self, name: str, factory: Factory, *, params: type | None = None, summary: str | None = None) -> None:
        """A dataset generator factory: factory(**params) -> callable(n, seed) -> list[dict]."""
        self._add("generators", name, factory, params, summary)

    def preset(self, name: str, spec: dict | str | Path, *, summary: str | None = None) -> None:
        """A compose spec by name: a dict, or the path of a YAML/TOML/JSON file."""
        self._registry.add(PresetEntry(name, spec, self._source, self._version, summary or ""))


class Plugins:
    """One plugin manager and the registry built from it; `DEFAULT` is the process's own."""

    def __init__(self, builtins: Iterable[str] = BUILTIN_PLUGINS, entry_points: EntryPoints | None = None) -> None:
        self.builtins = tuple(builtins)
        self.entry_points: EntryPoints = entry_points or (lambda: metadata.entry_points(group="rewardkit"))
        self.pm = pluggy.PluginManager("rewardkit")
        self.pm.add_hookspecs(hookspecs)
        self.failed: list[FailedPlugin] = []  # plugins that failed to load (hook failures live in the registry)
        self.sources: dict[str, tuple[str, str]] = {}  # plugin name in pm -> (source, version)
        self.loaded = False
        self._registry: Registry | None = None

    def load(self) -> None:
        """Register the built-ins, then every allowed entry point, one try/except each (once)."""
        if self.loaded:
            return
        self.loaded = True
        for module in self.builtins:
            self.register(importlib.import_module(module), name=module, source=BUILTIN_SOURCE)
        wanted = _wanted()
        seen: set[str] = set()
        for ep in self.entry_points():
            dist = ep.dist.name if ep.dist is not None else ep.module
            key = f"{dist}:{ep.name}"
            if key in seen:  # the same distribution can be visible twice on sys.path
                continue
            seen.add(key)
            if wanted is not None and dist.lower().replace("_", "-") not in wanted:
                continue
            try:
                self.register(ep.load(), name=key, source=dist)
            except PLUGIN_FAILURES as exc:  # a broken plugin must not break the others
                _fail(self.failed, dist, _version(dist), exc, "to load")

    def register(self, plugin: object, name: str, source: str | None = None) -> None:
        """Register a plugin object (module or instance) under `name`; `source` is shown as its distribution."""
        self.pm.register(plugin, name=name)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError:
            self.pm.unregister(name=name)
            raise
        src = source or name
        self.sources[name] = (src, _version(src))
        self._registry = None

    def register_reward(
        self,
        name: str,
        factory: Factory,
        *,
        params: type | None = None,
        summary: str | None = None,
        source: str = "__main__",
    ) -> None:
        """Register one reward from Python, without writing a plugin (shown with `source`)."""
        self._register_one("rewards", name, factory, params, summary, source)

    def register_view(
        self,
        name: str,
        factory: Factory,
        *,
        params: type | None = None,
        summary: str | None = None,
        source: str = "__main__",
    ) -> None:
        """Register one view from Python."""
        self._register_one("views", name, factory, params, summary, source)

    def register_tokenizer(
        self,
        name: str,
        factory: Factory,
        *,
        params: type | None = None,
        summary: str | None = None,
        source: str = "__main__",
    ) -> None:
        """Register one tokenizer from Python."""
        self._register_one("tokenizers", name, factory, params, summary, source)

    def register_callback(
        self,
        name: str,
        factory: Factory,
        *,
        params: type | None = None,
        summary: str | None = None,
        source: str = "__main__",
    ) -> None:
        """Register one trainer-callback factory from Python."""
        self._register_one("callbacks", name, factory, params, summary, source)

    def register_generator(
        self,
        name: str,
        factory: Factory,
        *,
        params: type | None = None,
        summary: str | None = None,
        source: str = "__main__",
    ) -> None:
        """Register one dataset generator from Python."""
        self._register_one("generators", name, factory, params, summary, source)

    def register_preset(
        self, name: str, spec: dict | str | Path, *, summary: str | None = None, source: str = "__main__"
    ) -> None:
        """Register one compose spec by name from Python."""
        self._register_one("presets", name, spec, None, summary, source)

    def _register_one(
        self, kind: str, name: str, factory: object, params: type | None, summary: str | None, source: str
    ) -> None:
        # One name is one small plugin (a hook of that kind), so it is listed, isolated and removed like any other.
        def hook(register: Registrar) -> None:
            if kind == "presets":
                register.preset(name, factory, summary=summary)  # type: ignore[arg-type]  # the registry checks it
            else:
                register._add(kind, name, factory, params, summary)

        self.register(
            types.SimpleNamespace(**{f"register_{kind}": hookspecs.hookimpl(hook)}),
            name=f"{source}:{kind}:{name}",
            source=source,
        )

    def unregister(self, name: str) -> None:
        """Remove a plugin registered with `register` (nothing happens when it is not registered)."""
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self.sources.pop(name, None)
        self._registry = None

    def registry(self) -> Registry:
        """Build (once) the registry by calling each plugin's hook implementations separately."""
        self.load()
        if self._registry is not None:
            return self._registry
        registry = Registry(failed=list(self.failed))
        # Each impl is called on its own (pluggy would stop at the first raising one), in registration order:
        # built-ins first, so a plugin reusing a name shows up as a conflict, never as a silent override.
        for kind in KINDS:
            for impl in getattr(self.pm.hook, f"register_{kind}").get_hookimpls():
                source, version = self.sources.get(impl.plugin_name, (impl.plugin_name, "0+unknown"))
                try:
                    impl.function(register=Registrar(registry, kind, source, version))
                except PLUGIN_FAILURES as exc:
                    _fail(registry.failed, source, version, exc, f"in register_{kind}")
        for line in registry.shadowing():  # said once per build of the registry, like a failed plugin
            print(f"rewardkit: {line}", file=sys.stderr)
        self._registry = registry
        return registry


DEFAULT = Plugins()
_ACTIVE: contextvars.ContextVar[Plugins] = contextvars.ContextVar("rewardkit_plugins", default=DEFAULT)


def active() -> Plugins:
    """The plugin manager the API uses now: `DEFAULT`, unless inside `using(...)`."""
    return _ACTIVE.get()


@contextlib.contextmanager
def using(plugins: Plugins) -> Iterator[Plugins]:
    """Make `plugins` the active manager inside the block (a test's own, isolated registry)."""
    token = _ACTIVE.set(plugins)
    try:
        yield plugins
    finally:
        _ACTIVE.reset(token)


def load_plugins() -> None:
    """Load the active manager's built-ins and entry points (once)."""
    active().load()


def register_plugin(plugin: object, name: str, source: str | None = None) -> None:
    """Register a plugin object (module or instance) with the active manager."""
    active().register(plugin, name, source)


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with `register_plugin`."""
    active().unregister(name)


def get_registry() -> Registry:
    """The active manager's registry (built once per change of plugins)."""
    return active().registry()


def __getattr__(name: str) -> Any:
    if name == "pm":  # the active manager's pluggy PluginManager, as older code reads it
        return active().pm
    raise AttributeError(f"module 'rewardkit.core.plugins' has no attribute {name!r}")
