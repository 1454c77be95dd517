"""The builder: the only place where a spec becomes an object, for every registry kind.

A spec is a name (`"boxed"`), a mapping whose name key is the kind's (`{"view": "after", "marker": "A:"}`,
`{"use": "rouge1", ...}`, `{"name": "lora_save", ...}`), or, for views, a list applied left to right. The
builder validates the parameters with the entry's `Params` model, builds nested specs first (a reward's
views and tokenizer, declared with `validation.Builds`), then calls `factory(**params)` with the built
collaborators in place of their specs. Objects that are already built pass through unchanged.
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import ConfigError, RewardkitError
from .registry import Entry, Registry, singular
from .validation import is_spec, nested_fields, validate

NAME_KEY = {"rewards": "use", "callbacks": "name", "views": "view", "tokenizers": "tokenizer",
            "generators": "generator"}
# Spec size bounds: a YAML alias bomb expands to millions of nodes before anything reads it.
MAX_CHAIN = 64
MAX_NESTING = 8  # a chain inside a chain inside ...: lists nested deeper are refused, never recursed into

# adapters[kind] = (params model, wrap): builds an object from a factory registered without a Params model
# (a plain TRL-style reward function) as wrap(factory, params); set by the layer that owns the wrapper class.
Adapter = tuple[Any, Callable[[Any, dict], Any]]


class Chain:
    """Several views applied left to right; None as soon as one finds nothing."""

    def __init__(self, views: list) -> None:
        self.views = views

    def __call__(self, text: str) -> str | None:
        for view in self.views:
            if text is None:
                return None
            text = view(text)
        return text

    def __repr__(self) -> str:
        return f"Chain({self.views!r})"


def split_spec(kind: str, spec: Any, where: str) -> tuple[str, dict]:
    """(registered name, parameters) of a name or mapping spec."""
    key = NAME_KEY[kind]
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict):
        params = dict(spec)
        name = params.pop(key, None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: a {singular(kind)} given as a mapping needs '{key}: <name>', got "
                              f"{spec!r:.80}. Hint: {{{key}: <name>, ...parameters}}; `rewardkit list` shows names.")
        return name, params
    raise ConfigError(f"{where}: expected a {singular(kind)} name or a mapping, got {type(spec).__name__} "
                      f"({spec!r:.60}). Hint: {{{key}: <name>, ...parameters}}.")


def _built_ok(kind: str, obj: Any) -> str | None:
    """None when `obj` is a usable built object of `kind`, else what it should have been."""
    if kind == "tokenizers":
        return None if callable(getattr(obj, "tokenize", None)) else "an object with tokenize(text)"
    if kind == "callbacks":
        return None if obj is not None and not isinstance(obj, (int, float, bool)) else "a trainer callback"
    return None if callable(obj) else "a callable"


def _check_built(kind: str, entry: Entry, obj: Any) -> Any:
    need = _built_ok(kind, obj)
    if need is not None:
        raise ConfigError(f"{singular(kind)} {entry.qualified!r} built {obj!r:.60}, which is not {need}. "
                          f"Hint: fix the plugin {entry.source} or pick another {singular(kind)}.")
    return obj


class Builder:
    """Builds registry kinds from specs; `adapters` wrap factories that have no Params model."""

    def __init__(self, registry: Registry, adapters: dict[str, Adapter] | None = None) -> None:
        self.registry = registry
        self.adapters = adapters or {}

    def build(self, kind: str, spec: Any, where: str | None = None, _nesting: int = 0) -> Any:
        """The object a spec describes (validated, nested specs built first)."""
        where = where or singular(kind)
        if kind == "views":
            if spec is None and not _nesting:
                return None
            if isinstance(spec, list):
                if not spec or len(spec) > MAX_CHAIN:
                    raise ConfigError(f"{where}: a view chain needs 1 to {MAX_CHAIN} views, got {len(spec)}. "
                                      "Hint: [boxed] or [{view: after, marker: 'A:'}, last_number].")
                if _nesting >= MAX_NESTING:
                    raise ConfigError(f"{where}: view chains nested more than {MAX_NESTING} deep. Hint: write "
                                      "one flat list of views.")
                return Chain([self.build(kind, s, f"{where}[{i}]", _nesting + 1) for i, s in enumerate(spec)])
        if not is_spec(spec):
            if _built_ok(kind, spec) is None:
                return spec  # already built (a view callable, a tokenizer object) by a Python caller
            split_spec(kind, spec, where)  # raises: neither a spec nor a usable object
        name, params = split_spec(kind, spec, where)
        entry = self.registry.get(kind, name)
        owner = f"{where} ({singular(kind)} {name!r})" if where != singular(kind) else f"{singular(kind)} {name!r}"
        if entry.params is None and entry.lazy:  # 'module:Class' registered without params=: ask the class, once
            entry.params = getattr(entry.load(), "Params", None)
        adapter = self.adapters.get(kind) if entry.params is None else None
        model = adapter[0] if adapter is not None else entry.params
        if model is not None:
            validate(model, params, owner)  # before the (possibly heavy) factory import
            for field, nested_kind in nested_fields(model).items():
                value = params[field] if field in params else model.model_fields[field].get_default(
                    call_default_factory=True)
                if value is not None:  # a default spec ("answer") too; a built object passes through, junk is refused
                    params[field] = self.build(nested_kind, value, f"{owner}.{field}")
        factory = entry.load()
        try:
            obj = adapter[1](factory, params) if adapter is not None else factory(**params)
        except RewardkitError:
            raise
        except (Exception, SystemExit) as exc:  # a plugin factory's own TypeError/sys.exit(): name the plugin
            raise ConfigError(f"{owner} from {entry.source} could not be built: {type(exc).__name__}: {exc}. "
                              f"Hint: check its parameters with `rewardkit list --json`.") from exc
        return _check_built(kind, entry, obj)
