"""The builder: the only place where a spec becomes an object, for every registry kind.

A spec is a name (`"boxed"`), a mapping whose name key is the kind's (`{"view": "after", "marker": "A:"}`,
`{"use": "rouge1", ...}`, `{"name": "lora_save", ...}`; `registry.KIND_TABLE` holds the keys), or, for views,
a list applied left to right. The builder validates the parameters with the entry's `Params` model (once),
builds nested specs first (a reward's views and tokenizer, declared with `validation.Builds`), then hands
the validated model, nested objects in place, to a `validation.Configured` class (`factory(params)`); any
other factory gets keywords (`factory(**params)`). Objects that are already built pass through unchanged.
"""

from __future__ import annotations

from typing import Any, Callable

from pydantic import BaseModel

from rewardkit.core.errors import ConfigError, RewardkitError
from rewardkit.core.registry import BUILT_KINDS, KIND_TABLE, Entry, Registry, kind_of
from rewardkit.core.validation import is_spec, nested_fields, takes_validated, validate

NAME_KEY = {kind: KIND_TABLE[kind].name_key for kind in BUILT_KINDS}
# Spec size bounds: a YAML alias bomb expands to millions of nodes before anything reads it.
MAX_CHAIN = 64
MAX_NESTING = 8  # a chain inside a chain inside ...: lists nested deeper are refused, never recursed into

# adapters[kind] = (params model, wrap): builds an object from a factory registered without a Params model
# (a plain TRL-style reward function, or a class whose instances are one) as wrap(factory, validated params,
# the factory's own keywords); set by the layer that owns the wrapper class.
Adapter = tuple[Any, Callable[[Any, Any, dict], Any]]


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


def split_spec(kind: str, spec: object, where: str) -> tuple[str, dict]:
    """(registered name, parameters) of a name or mapping spec."""
    key = NAME_KEY[kind]
    single = kind_of(kind).singular
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict):
        params = dict(spec)
        name = params.pop(key, None)
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"{where}: a {single} given as a mapping needs '{key}: <name>', got {spec!r:.80}.",
                hint=f"{{{key}: <name>, ...parameters}}; `rewardkit list` shows names.",
            )
        return name, params
    raise ConfigError(
        f"{where}: expected a {single} name or a mapping, got {type(spec).__name__} ({spec!r:.60}).",
        hint=f"{{{key}: <name>, ...parameters}}.",
    )


def _built_ok(kind: str, obj: Any) -> str | None:
    """None when `obj` is a usable built object of `kind`, else what it should have been."""
    check = kind_of(kind).check
    return check(obj) if check is not None else None


def _check_built(kind: str, entry: Entry, obj: Any) -> Any:
    need = _built_ok(kind, obj)
    if need is not None:
        single = kind_of(kind).singular
        raise ConfigError(
            f"{single} {entry.qualified!r} built {obj!r:.60}, which is not {need}.",
            hint=f"fix the plugin {entry.source} or pick another {single}.",
        )
    return obj


class Builder:
    """Builds registry kinds from specs; `adapters` wrap factories that have no Params model."""

    def __init__(self, registry: Registry, adapters: dict[str, Adapter] | None = None) -> None:
        self.registry = registry
        self.adapters = adapters or {}

    def build(self, kind: str, spec: object, where: str | None = None, _nesting: int = 0) -> Any:
        """The object a spec describes (validated once, nested specs built first)."""
        if kind not in NAME_KEY:
            raise ConfigError(f"build: unknown kind {kind!r}.", hint=f"one of {', '.join(NAME_KEY)}.")
        single = kind_of(kind).singular
        where = where or single
        if kind == "views":
            if spec is None and not _nesting:
                return None
            if isinstance(spec, list):
                if not spec or len(spec) > MAX_CHAIN:
                    raise ConfigError(
                        f"{where}: a view chain needs 1 to {MAX_CHAIN} views, got {len(spec)}.",
                        hint="[boxed] or [{view: after, marker: 'A:'}, last_number].",
                    )
                if _nesting >= MAX_NESTING:
                    raise ConfigError(
                        f"{where}: view chains nested more than {MAX_NESTING} deep.",
                        hint="write one flat list of views.",
                    )
                return Chain([self.build(kind, s, f"{where}[{i}]", _nesting + 1) for i, s in enumerate(spec)])
        if not is_spec(spec):
            if _built_ok(kind, spec) is None:
                return spec  # already built (a view callable, a tokenizer object) by a Python caller
            split_spec(kind, spec, where)  # raises: neither a spec nor a usable object
        name, params = split_spec(kind, spec, where)
        entry = self.registry.get(kind, name)
        owner = f"{where} ({single} {name!r})" if where != single else f"{single} {name!r}"
        if entry.params is None and entry.lazy:  # 'module:Class' registered without params=: ask the class, once
            entry.params = getattr(entry.load(), "Params", None)
        adapter = self.adapters.get(kind) if entry.params is None else None
        model = adapter[0] if adapter is not None else entry.params
        own: dict = {}
        if adapter is not None and isinstance(entry.load(), type):
            # A factory class without Params (the hookspec's `factory(**params)`): the keys the wrapper does not
            # know are the class's own keywords; the rest (name, views, timeout...) give it the reward contract.
            own = {k: params.pop(k) for k in list(params) if k not in model.model_fields}
        validated: BaseModel | None = None
        if model is not None:
            validated = validate(model, params, owner)  # the one validation, before the (heavy) factory import
            built = {}
            for field, nested_kind in nested_fields(model).items():
                value = getattr(validated, field)
                if value is not None:  # a default spec ("answer") too; a built object passes through, junk is refused
                    built[field] = self.build(nested_kind, value, f"{owner}.{field}")
            if built:
                validated = validated.model_copy(update=built)
                params.update(built)
        factory = entry.load()
        try:
            if adapter is not None:
                obj = adapter[1](factory, validated, own)
            elif validated is not None and takes_validated(factory):
                obj = factory(validated)
            else:  # a factory written for keywords (a function, an older class): the spec's values, nested built
                obj = factory(**params)
        except RewardkitError as exc:
            if adapter is None:
                raise
            raise exc.within(f"{owner} from {entry.source}") from None  # the wrapper refused what the plugin built
        except (Exception, SystemExit) as exc:  # a plugin factory's own TypeError/sys.exit(): name the plugin
            raise ConfigError(
                f"{owner} from {entry.source} could not be built: {type(exc).__name__}: {exc}.",
                hint="check its parameters with `rewardkit list --json`.",
            ) from exc
        return _check_built(kind, entry, obj)
