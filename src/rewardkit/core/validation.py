"""The one validator: every parameter of every kind, and the `train` config, is checked here.

Errors share one sentence shape: `<owner>: <field path>: <problem>[ Did you mean 'x'?]. Hint: <fix>`.
Models extend `Params`: strict types (no `True` as a number, no `null` for a non-optional field), finite
floats, unknown keys refused. A field annotated with `Builds(kind)` holds a nested spec (a view, a
tokenizer) that the registry's builder turns into an object before the owner is constructed.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Callable, ClassVar, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from rewardkit.core.errors import ConfigError, closest

M = TypeVar("M", bound=BaseModel)

DEFAULT_HINT = "`rewardkit list --json` shows every parameter with its type and default."


class Params(BaseModel):
    """Base of every parameter model: strict, finite, closed."""

    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, arbitrary_types_allowed=True, defer_build=True
    )  # schemas build on first use: `rewardkit list` never validates


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


def stage_ref(value: object) -> str | None:
    """The stage name of a `@<stage>` reference, else None: the one parser of `@` references.

    >>> stage_ref("@sft"), stage_ref("Qwen/Qwen2.5-0.5B"), stage_ref(3)
    ('sft', None, None)
    """
    if isinstance(value, str) and value.startswith(REF_PREFIX) and len(value) > len(REF_PREFIX):
        return value[len(REF_PREFIX) :]
    return None


def model_ref_fields(model: type[BaseModel] | None) -> dict[str, ModelRef]:
    """{field name: ModelRef} of the fields marked with `ModelRef`."""
    if model is None:
        return {}
    return {
        name: meta for name, info in model.model_fields.items() for meta in info.metadata if isinstance(meta, ModelRef)
    }


# Durations are bounded: thread and process timeouts overflow (or never fire) near 1e308.
Seconds = Annotated[float, Field(gt=0, le=86_400, description="Seconds (0 < t <= 86400).")]
# Regex budgets: below a millisecond every match times out (scores nothing); above an hour it never helps.
RegexSeconds = Annotated[float, Field(ge=0.001, le=3600, description="Seconds one regex match may take.")]
# A nested spec may also be an already built object (Python callers); the schema shows the spec forms.
ViewSpec = Annotated[
    Union[str, dict, list, Callable, None],
    Builds("views"),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "object"}, {"type": "array"}, {"type": "null"}],
            "description": "A view name, {view: name, ...params}, or a list of views applied in order.",
        }
    ),
]
TokenizerSpec = Annotated[
    Any,
    Builds("tokenizers"),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "object"}],
            "description": "A tokenizer name or {tokenizer: name, ...params}.",
        }
    ),
]


def nested_fields(model: type[BaseModel] | None) -> dict[str, str]:
    """{field name: registry kind} of the fields annotated with `Builds`."""
    if model is None:
        return {}
    return {
        name: meta.kind
        for name, info in model.model_fields.items()
        for meta in info.metadata
        if isinstance(meta, Builds)
    }


def is_spec(value: object) -> bool:
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


def _problem(model: type[BaseModel], err: dict, path: str) -> tuple[str, str]:
    """(field path, problem) of one pydantic error."""
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        valid = _fields_at(model, loc)
        return path, f"unknown key.{closest(str(loc[-1]), valid)} Valid keys: {', '.join(valid) or '(none)'}"
    if kind == "missing":
        return path, "missing (required)"
    if loc and loc[-1] == "[key]" and isinstance(err.get("input"), bool):
        return path, (f"YAML read a key as {err['input']} (unquoted on, off, yes, no are booleans in YAML); quote it")
    msg = err["msg"].removeprefix("Value error, ")
    if not loc:  # a check across fields (a model validator): the input is the whole mapping, not worth echoing
        return path, msg
    shown = repr(err.get("input"))
    return path, f"{msg} (got {shown[:80]})"


def validate(model: type[M], data: object, owner: str, *, prefix: str = "", hint: str = DEFAULT_HINT) -> M:
    """`model(**data)`; on failure one ConfigError naming the owner, each field path, the fix and a hint."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{prefix or 'the parameters'} must be a mapping, got {type(data).__name__} ({data!r:.80})",
            owner=owner,
            hint=hint,
        )
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(
            f"keys must be strings, got {bad_keys[0]!r} (YAML reads unquoted on, off, yes, no as booleans: quote them)",
            owner=owner,
            path=prefix or "the parameters",
            hint=hint,
        )
    try:
        return model(**data)
    except ValidationError as exc:
        problems = [
            _problem(model, err, ".".join(str(p) for p in ([prefix] if prefix else []) + list(err["loc"])))
            for err in _merge_union_errors([dict(e) for e in exc.errors()])
        ]
        if len(problems) == 1:
            path, problem = problems[0]
            raise ConfigError(problem, owner=owner, path=path or None, hint=hint) from None
        raise ConfigError(
            "; ".join(f"{path}: {problem}" if path else problem for path, problem in problems), owner=owner, hint=hint
        ) from None


def accept(model: type[M], given: M | None, kwargs: dict[str, object], owner: str) -> M:
    """The parameters a constructor was handed: the builder's validated `given`, or `kwargs` validated now.

    Validation happens once: the builder validates a spec, builds its nested specs and hands the result over;
    a Python caller constructing the class directly (`ExactMatch(reference="answer")`) gets the same checks
    here. Nested specs (fields marked `Builds`) must already be objects on that path: only the builder builds.
    """
    if given is not None:
        if kwargs or not isinstance(given, model):
            raise ConfigError(
                f"expected one {model.__name__} instance or keyword parameters, got "
                f"{type(given).__name__}{' and keywords' if kwargs else ''}",
                owner=owner,
                hint="pass keyword parameters, or build it with rewardkit.build(...).",
            )
        return given
    validated = validate(model, kwargs, owner)
    for field, kind in nested_fields(model).items():
        value = getattr(validated, field)
        if is_spec(value):
            raise ConfigError(
                f"{value!r} is a spec, not a {kind[:-1]}",
                owner=owner,
                path=field,
                hint=f"build {owner} with rewardkit.get_reward / rewardkit.build, which builds its "
                f"nested specs, or pass rewardkit.get_{kind[:-1]}(...).",
            )
    return validated


class Configured:
    """Base of the classes built from a `Params` model (rewards, views, tokenizers, generators).

    The constructor takes the validated parameters positionally (what the builder passes) or as keywords (a
    Python caller), and stores them as `self.params`. Subclasses that override `__init__` keep the signature
    `(self, params=None, /, **kwargs)` and call `super().__init__(params, **kwargs)` first.
    """

    Params: ClassVar[type[BaseModel]] = Params
    takes_validated_params: ClassVar[bool] = True
    name: ClassVar[str] = "object"
    kind: ClassVar[str] = "object"  # how errors name it: "<kind> '<name>'"

    def __init__(self, params: BaseModel | None = None, /, **kwargs: object) -> None:
        self.params: Any = accept(self.Params, params, kwargs, self.owner())

    @classmethod
    def owner(cls) -> str:
        """How errors about its parameters name it."""
        return f"{cls.kind} {cls.name!r}"


def takes_validated(factory: object) -> bool:
    """Whether the builder may hand `factory` its validated Params positionally: a class that says so
    (`takes_validated_params`, set on Configured) and whose constructor still has the positional `params` (an
    older subclass with `__init__(self, **params)` gets keywords)."""
    if not (isinstance(factory, type) and getattr(factory, "takes_validated_params", False)):
        return False
    try:
        first = next(iter(inspect.signature(factory).parameters.values()), None)
    except (TypeError, ValueError):
        return False
    return first is not None and first.kind in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD)


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
        merged.append(
            {
                "loc": field,
                "type": "union",
                "input": errs[0].get("input"),
                "msg": f"not one of the accepted types ({', '.join(tags)})",
            }
        )
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
