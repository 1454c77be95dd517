"""Count `Any` in the annotations of public functions and methods: how much of the typed surface says nothing.

    python scripts/any_in_signatures.py                 # src/rewardkit: the total, and how many are a bare `Any`
    python scripts/any_in_signatures.py src/rewardkit/api.py -d   # one line per function that has one

Public: the function's own name does not start with '_' (methods of any class included, dunders left out).
Every `Any` in a parameter or return annotation counts (`dict[str, Any]` too, string annotations parsed);
"bare" counts the annotations that are `Any` alone. Type aliases are not expanded.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def count_any(node: ast.AST | None) -> int:
    """`Any` names inside an annotation."""
    if node is None:
        return 0
    found = 0
    for sub in ast.walk(node):
        if (isinstance(sub, ast.Name) and sub.id == "Any") or (isinstance(sub, ast.Attribute) and sub.attr == "Any"):
            found += 1
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            try:
                found += count_any(ast.parse(sub.value, mode="eval"))
            except SyntaxError:
                pass
    return found


def is_bare(node: ast.AST | None) -> bool:
    return (isinstance(node, ast.Name) and node.id == "Any") or (isinstance(node, ast.Attribute) and node.attr == "Any")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="src/rewardkit", help="a package folder or one module")
    parser.add_argument("-d", "--detail", action="store_true", help="list each function with an Any")
    options = parser.parse_args()
    root = Path(options.root)
    total = bare = 0
    for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or fn.name.startswith("_"):
                continue
            a = fn.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *(x for x in (a.vararg, a.kwarg) if x)]
            here = sum(count_any(p.annotation) for p in params) + count_any(fn.returns)
            total += here
            bare += sum(is_bare(p.annotation) for p in params) + is_bare(fn.returns)
            if here and options.detail:
                shown = [f"{p.arg}: {ast.unparse(p.annotation)}" for p in params if count_any(p.annotation)]
                if count_any(fn.returns) and fn.returns is not None:
                    shown.append(f"-> {ast.unparse(fn.returns)}")
                print(f"{path}:{fn.lineno} {fn.name}: {', '.join(shown)}")
    print(f"Any in public signatures: {total} (bare Any: {bare})")


if __name__ == "__main__":
    main()
