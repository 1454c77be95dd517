"""Reading an installed package's source without importing it, for checks that must answer before heavy imports.

`rewardkit train` checks a config's trainer keys and a BERTScore reward's defaults in well under a second; the
modules that define them (transformers' TrainingArguments, TRL's configs, bert-score's tables) import torch on
import (several seconds, tens under load). Their source is parsed instead (`ast`, never executed). Every reader
returns None when the source is not in the expected shape; the caller then imports the module as before, so a
new release of a package can make a check slower, never wrong (tests compare both ways).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path
from typing import Any

# Classes a package re-exports through a lazy `__init__` (no import statement to follow): where they live.
REEXPORTS = {"transformers.TrainingArguments": "transformers.training_args"}


def module_file(name: str) -> Path | None:
    """The .py file of module `name` (dotted), found without importing it or its package (None: not found)."""
    top, _, rest = name.partition(".")
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: nothing is imported
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin.endswith(".py") else None
    for base in spec.submodule_search_locations or ():
        stem = Path(base).joinpath(*rest.split("."))
        for candidate in (stem.with_suffix(".py"), stem / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


@functools.lru_cache(maxsize=64)
def parse_module(name: str) -> ast.Module | None:
    """The parsed source of module `name` (cached), or None."""
    path = module_file(name)
    if path is None:
        return None
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def literal(module: str, name: str) -> Any:
    """The value of `name = <literal>` at the top of `module` (ast.literal_eval), or None."""
    tree = parse_module(module)
    for node in tree.body if tree is not None else ():
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return None
    return None


def _absolute(module: str, node: ast.ImportFrom) -> str | None:
    """The absolute module name an `from ... import` in `module` reads from."""
    if not node.level:
        return node.module
    path = module_file(module)
    package = module if path is not None and path.name == "__init__.py" else module.rpartition(".")[0]
    parts = package.split(".")
    if node.level - 1 >= len(parts):
        return None
    parent = ".".join(parts[: len(parts) - (node.level - 1)])
    return f"{parent}.{node.module}" if node.module else parent


def _find_class(module: str, name: str) -> tuple[ast.ClassDef, str] | None:
    """The class `name` as defined in `module`, following `from X import name` (relative too) and REEXPORTS."""
    for _ in range(8):  # a bounded chain of re-exports
        tree = parse_module(module)
        if tree is None:
            return None
        source = None
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                return node, module
            if isinstance(node, ast.ImportFrom) and any(a.name == name and a.asname is None for a in node.names):
                source = _absolute(module, node)
        source = REEXPORTS.get(f"{source}.{name}", source)
        if source is None or source == module:
            return None
        module = source
    return None


def _init_field(node: ast.AnnAssign) -> bool:
    """Whether a dataclass field takes a constructor argument (`field(init=False)` does not)."""
    value = node.value
    if isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", None)) == "field":
        for kw in value.keywords:
            if kw.arg == "init" and isinstance(kw.value, ast.Constant) and kw.value.value is False:
                return False
    return True


def dataclass_fields(module: str, name: str) -> dict[str, str] | None:
    """{field: annotation source} of the constructor arguments of dataclass `name` in `module` and its bases
    (None when a class or base cannot be followed in the source)."""
    found = _find_class(module, name)
    if found is None:
        return None
    node, where = found
    fields: dict[str, str] = {}
    for base in node.bases:
        if not isinstance(base, ast.Name):
            return None
        inherited = dataclass_fields(where, base.id)
        if inherited is None:
            return None
        fields.update(inherited)
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            annotation = ast.unparse(item.annotation)
            if annotation.startswith(("ClassVar", "typing.ClassVar")):
                continue
            if _init_field(item):
                fields[item.target.id] = annotation
            else:
                fields.pop(item.target.id, None)
    return fields
