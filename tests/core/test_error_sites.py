"""Error sites build their errors from parts: no rewardkit error is constructed with a hand-written ' Hint: '.

`python tests/core/test_error_sites.py` prints the counts (error sites with a 'Hint:' literal, sites passing
hint=, and other 'Hint:' strings: warnings, log lines, plain Python exceptions, constants).
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "src" / "rewardkit", ROOT / "plugins" / "rewardkit-korean" / "src")
ERRORS = frozenset(
    {
        "RewardkitError",
        "ConfigError",
        "DataError",
        "RewardError",
        "ExpressionError",
        "UnknownNameError",
        "AmbiguousNameError",
        "WorkerDied",
    }
)


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _literal_texts(node: ast.AST) -> list[str]:
    """The literal text pieces of a message expression (strings, f-string text, `+` and `%` operands)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [t for v in node.values for t in _literal_texts(v)]
    if isinstance(node, ast.BinOp):
        return _literal_texts(node.left) + _literal_texts(node.right)
    return []


def _files() -> list[Path]:
    return sorted(p for source in SOURCES for p in source.rglob("*.py"))


def scan() -> tuple[list[str], list[str], Counter[str]]:
    """(error sites whose message literal holds 'Hint:', error sites passing hint=, other 'Hint:' strings by kind)."""
    literal_sites: list[str] = []
    hint_sites: list[str] = []
    others: Counter[str] = Counter()
    for path in _files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(ROOT)
        in_error_message: set[int] = set()
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _called_name(node) in ERRORS):
                continue
            if any(k.arg == "hint" for k in node.keywords):
                hint_sites.append(f"{where}:{node.lineno}")
            if node.args and any("Hint:" in t for t in _literal_texts(node.args[0])):
                literal_sites.append(f"{where}:{node.lineno}")
                in_error_message.update(id(n) for n in ast.walk(node.args[0]))
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
        owner_of = {id(sub): call for call in calls for arg in call.args for sub in ast.walk(arg)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and "Hint:" in node.value):
                continue
            if id(node) in in_error_message or id(node) in docstrings:
                continue
            call = owner_of.get(id(node))
            others[_called_name(call) or "?" if call is not None else "constant or other expression"] += 1
    return literal_sites, hint_sites, others


def test_no_rewardkit_error_is_built_from_a_hand_written_hint() -> None:
    literal_sites, _, _ = scan()
    assert not literal_sites, (
        "build these errors from parts: ConfigError('problem.', hint='the fix') — render() writes ' Hint: ': "
        + ", ".join(literal_sites)
    )


if __name__ == "__main__":
    literal, with_hint, other = scan()
    print(f"rewardkit error sites with a 'Hint:' literal: {len(literal)}")
    print(f"rewardkit error sites passing hint=: {len(with_hint)}")
    print(f"other 'Hint:' strings: {sum(other.values())} {dict(other.most_common())}")
    if "-v" in sys.argv:
        print("\n".join(literal))
