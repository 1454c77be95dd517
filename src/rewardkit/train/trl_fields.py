"""The constructor arguments of each stage's TRL config class, read from TRL's source without importing it.

`trainer:` keys are checked against them before torch, transformers or trl load (seconds, tens under load); when
the source is not in the expected shape the classes are imported instead (`core.module_source`).
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any, Literal, Optional, Union

from rewardkit.core.module_source import dataclass_fields

# stage -> (module, TRL config class); tests/train/test_trl_fields.py compares the fields with the imported classes.
CONFIG_CLASSES = {
    "sft": ("trl.trainer.sft_config", "SFTConfig"),
    "rm": ("trl.trainer.reward_config", "RewardConfig"),
    "dpo": ("trl.trainer.dpo_config", "DPOConfig"),
    "grpo": ("trl.trainer.grpo_config", "GRPOConfig"),
}


def read_fields(stage: str) -> dict[str, str] | None:
    """{argument: annotation source} of the stage's TRL config class, from the source alone (None: unreadable)."""
    module, name = CONFIG_CLASSES[stage]
    return dataclass_fields(module, name)


def config_fields(stage: str) -> tuple[str, list[str]]:
    """(class name, constructor arguments) of the stage's TRL config class: read light, else imported."""
    module, name = CONFIG_CLASSES[stage]
    fields = read_fields(stage)
    if fields is not None:
        return name, list(fields)
    import trl

    return name, [f.name for f in dataclasses.fields(getattr(trl, name)) if f.init]


# Names an annotation in TRL's config classes may use, as types pydantic validates; any other name (an enum of
# transformers, ParallelismConfig) leaves its field to the check after import (stages.check_trainer_values).
_TYPES: dict[str, Any] = {"int": int, "float": float, "str": str, "bool": bool, "dict": dict, "list": list}
_GENERIC: dict[str, Any] = {"list": list, "dict": dict, "tuple": tuple}


class _Unknown(Exception):
    pass


def _annotation(node: ast.expr) -> Any:
    """The type an annotation's syntax tree names, from builtins and typing only (never evaluated)."""
    if isinstance(node, ast.Constant):
        if node.value is None:
            return type(None)
        if isinstance(node.value, str):  # a quoted forward reference
            return _annotation(ast.parse(node.value, mode="eval").body)
        raise _Unknown
    if isinstance(node, ast.Name):
        if node.id in _TYPES:
            return _TYPES[node.id]
        if node.id == "Any":
            return Any
        raise _Unknown
    if isinstance(node, ast.Attribute) and node.attr == "Any":
        return Any
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return Union[_annotation(node.left), _annotation(node.right)]
    if isinstance(node, ast.Subscript):
        name = node.value.id if isinstance(node.value, ast.Name) else getattr(node.value, "attr", None)
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if name == "Literal":
            values = tuple(i.value for i in items if isinstance(i, ast.Constant))
            if len(values) != len(items):
                raise _Unknown
            return Literal.__getitem__(values)
        args = tuple(_annotation(i) for i in items)
        if name in _GENERIC:
            return _GENERIC[name][args if len(args) > 1 else args[0]]
        if name == "Optional":
            return Optional[args[0]]
        if name == "Union":
            return Union[args]
    raise _Unknown


def scalar_type(tp: Any) -> bool:
    """Whether `tp` is int, float or bool (or an Optional/Union of them): checked strictly, as TRL takes it."""
    import types
    import typing

    args = typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else (tp,)
    scalars = [a for a in args if a is not type(None)]
    return bool(scalars) and all(a in (int, float, bool) for a in scalars)


def light_types(stage: str) -> dict[str, Any] | None:
    """{argument: type} of the stage's TRL config arguments whose annotation names only builtins and typing
    (read from source; None when the source is unreadable). The others are checked after import."""
    fields = read_fields(stage)
    if fields is None:
        return None
    out: dict[str, Any] = {}
    for name, source in fields.items():
        try:
            out[name] = _annotation(ast.parse(source, mode="eval").body)
        except (_Unknown, SyntaxError, TypeError):
            continue
    return out
