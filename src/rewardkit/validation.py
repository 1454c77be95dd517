"""The one validator: every parameter of every kind, and the `train` config, is checked here.

Errors share one sentence shape: `<owner>: <field path>: <problem>[ Did you mean 'x'?]. Hint: <fix>`.
Models extend `Params`: strict types (no `True` as a number, no `null` for a non-optional field), finite
floats, unknown keys refused. A field annotated with `Builds(kind)` holds a nested spec (a view, a
tokenizer) that the registry's builder turns into an object before the owner is constructed.
"""

from __future__ import annotations

import typing
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Callable, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from .errors import ConfigError, closest

M = TypeVar("M", bound=BaseModel)

DEFAULT_HINT = "`rewardkit list --json` shows every parameter with its type and default."


class Params(BaseModel):
    """Base of every parameter model: strict, finite, closed."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, arbitrary_types_allowed=True,
                              defer_build=True)  # schemas build on first use: `rewardkit list` never validates


@dataclass(frozen=True)
class Builds:
    """Field metadata: the value is a spec of registry kind `kind`, built before the owner is constructed."""

    kind: str


@dataclass(frozen=True)
class ModelRef:
    """Field metadata: the value names a model (or tokenizer) that preflight checks and `--smoke` swaps.

    `kind` is what must be in the folder ("model": config.json, "tokenizer": tokenizer files). `tiny` is the
    tiny local stand-in `--smoke` puts in its place ("bert", "rm", "lm", "classifier"; None: the field is
    removed and the stand-in's own is used); `smoke` sets other parameters with it (a None value removes one).
    A value `@<stage>` is a pipeline reference (see `stage_ref`), resolved by `rewardkit train`.
    """

    kind: str = "model"
    tiny: str | None = None
    smoke: tuple[tuple[str, Any], ...] = ()


REF_PREFIX = "@"  # `model: "@sft"` = the output of the earlier pipeline stage named "sft"


def stage_ref(value: Any) -> str | None:
    """The stage name of a `@<stage>` reference, else None: the one parser of `@` references.

    >>> stage_ref("@sft"), stage_ref("Qwen/Qwen2.5-0.5B"), stage_ref(3)
    ('sft', None, None)
    """
    if isinstance(value, str) and value.startswith(REF_PREFIX) and len(value) > len(REF_PREFIX):
        return value[len(REF_PREFIX):]
    return None


def model_ref_fields(model: type[BaseModel] | None) -> dict[str, ModelRef]:
    """{field name: ModelRef} of the fields marked with `ModelRef`."""
    if model is None:
        return {}
    return {name: meta for name, info in model.model_fields.items()
            for meta in info.metadata if isinstance(meta, ModelRef)}


# Durations are bounded: thread and process timeouts overflow (or never fire) near 1e308.
Seconds = Annotated[float, Field(gt=0, le=86_400, description="Seconds (0 < t <= 86400).")]
# Regex budgets: below a millisecond every match times out (scores nothing); above an hour it never helps.
RegexSeconds = Annotated[float, Field(ge=0.001, le=3600, description="Seconds one regex match may take.")]
# A nested spec may also be an already built object (Python callers); the schema shows the spec forms.
ViewSpec = Annotated[Union[str, dict, list, Callable, None], Builds("views"), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "object"}, {"type": "array"}, {"type": "null"}],
     "description": "A view name, {view: name, ...params}, or a list of views applied in order."})]
TokenizerSpec = Annotated[Any, Builds("tokenizers"), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "object"}],
     "description": "A tokenizer name or {tokenizer: name, ...params}."})]


def nested_fields(model: type[BaseModel] | None) -> dict[str, str]:
    """{field name: registry kind} of the fields annotated with `Builds`."""
    if model is None:
        return {}
    return {name: meta.kind for name, info in model.model_fields.items()
            for meta in info.metadata if isinstance(meta, Builds)}


def is_spec(value: Any) -> bool:
    """True for what a spec file can hold (a name, a mapping, a list) as opposed to a built object."""
    return isinstance(value, (str, dict, list))


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (sub)model that holds the last element of `loc`."""
    for part in loc[:-1]:
        info = model.model_fields.get(part) if isinstance(part, str) else None
        sub = _submodel(info.annotation) if info is not None else None
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)


def _problem(model: type[BaseModel], err: dict, path: str) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        valid = _fields_at(model, loc)
        return f"{path}: unknown key.{closest(str(loc[-1]), valid)} Valid keys: {', '.join(valid) or '(none)'}"
    if kind == "missing":
        return f"{path}: missing (required)"
    if loc and loc[-1] == "[key]" and isinstance(err.get("input"), bool):
        return (f"{path}: YAML read a key as {err['input']} (unquoted on, off, yes, no are booleans in YAML); "
                "quote it")
    msg = err["msg"].removeprefix("Value error, ")
    if not loc:  # a check across fields (a model validator): the input is the whole mapping, not worth echoing
        return f"{path}: {msg}" if path else msg
    shown = repr(err.get("input"))
    return f"{path}: {msg} (got {shown[:80]})"


def validate(model: type[M], data: Any, owner: str, *, prefix: str = "", hint: str = DEFAULT_HINT) -> M:
    """`model(**data)`; on failure one ConfigError naming the owner, each field path, the fix and a hint."""
    if not isinstance(data, dict):
        raise ConfigError(f"{owner}: {prefix or 'the parameters'} must be a mapping, got {type(data).__name__} "
                          f"({data!r:.80}). Hint: {hint}")
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"{owner}: {prefix or 'the parameters'}: keys must be strings, got {bad_keys[0]!r} "
                          "(YAML reads unquoted on, off, yes, no as booleans: quote them). Hint: " + hint)
    try:
        return model(**data)
    except ValidationError as exc:
        problems = []
        for err in _merge_union_errors(exc.errors()):
            path = ".".join(str(p) for p in ([prefix] if prefix else []) + list(err["loc"]))
            problems.append(_problem(model, err, path))
        raise ConfigError(f"{owner}: " + "; ".join(problems) + f". Hint: {hint}") from None


_PLAIN_TAGS = frozenset({"str", "int", "float", "bool", "bytes", "callable", "none"})


def _is_member_tag(part: object, fields: set) -> bool:
    """Whether a location part names a Union member ('str', 'dict[any,any]', 'constrained-int'), not a field."""
    return isinstance(part, str) and part not in fields and (part in _PLAIN_TAGS or not part.isidentifier())


def _merge_union_errors(errors: list[dict]) -> list[dict]:
    """One error per field for a value no member of a Union accepts (pydantic reports one per member).

    A member error's location ends in the member's type ('group', 'constrained-int'). When a member failed on a
    constraint (the value had the right type, e.g. group=-1), that error is the one that explains it.
    """
    fields = {err["loc"][0] for err in errors if err["loc"]}
    merged: list[dict] = []
    members: dict[tuple, list[dict]] = {}
    for err in errors:
        loc = tuple(err["loc"])
        if len(loc) >= 2 and _is_member_tag(loc[-1], fields):
            members.setdefault(loc[:-1], []).append(err)
        else:
            merged.append(err)
    for field, errs in members.items():
        near = [e for e in errs if not e["type"].endswith("_type")]
        if near:  # the right type, a wrong value: report that member's own message
            merged.append({**near[0], "loc": field})
            continue
        tags = dict.fromkeys(str(e["loc"][-1]).split("[")[0].removeprefix("constrained-") for e in errs)
        merged.append({"loc": field, "type": "union", "input": errs[0].get("input"),
                       "msg": f"not one of the accepted types ({', '.join(tags)})"})
    return merged


def duplicates(items: Iterable[Hashable]) -> list:
    """The values that occur more than once, each once, in order of their second occurrence."""
    seen: set = set()
    dups: dict = {}
    for item in items:
        if item in seen:
            dups[item] = None
        seen.add(item)
    return list(dups)
