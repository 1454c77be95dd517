"""A whitelisted arithmetic language for `combine:` expressions, parsed with `ast` and never evaluated by Python.

Grammar: numbers, aliases, `+ - * /`, unary `-`/`+`, parentheses, `min(a, b, ...)`, `max(a, b, ...)`,
`clip(x, lo, hi)`. Anything else (attributes, other calls, subscripts, `**`, names not declared) is an error.
"""

from __future__ import annotations

import ast
import math
import warnings
from dataclasses import dataclass
from typing import Union

from rewardkit.core.errors import ExpressionError, RewardError, closest

FUNCTIONS = {"min": (2, None), "max": (2, None), "clip": (3, 3)}
MAX_LENGTH = 10_000
MAX_DEPTH = 200  # nesting of the tree: every later walk (linear form, evaluation) stays far from the recursion limit


class Overflow(ArithmeticError):
    """A combine step on finite values gave inf or NaN (not a division by zero)."""


class CrossedBounds(RewardError):
    """clip(x, lo, hi) met lo > hi on a row (bounds computed from rewards; constant ones are refused by parse)."""


_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Bin:
    op: str
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple


Node = Union[Num, Var, Bin, Call]


def parse(text: str, names: set[str] | frozenset[str]) -> Node:
    """Parse `text` into a tree over the declared `names`; raise ExpressionError on anything else."""
    if not isinstance(text, str):
        raise ExpressionError(
            f"combine: must be an expression string, got {type(text).__name__} ({text!r:.40}).",
            hint='quote it, e.g. combine: "(a + 2*b) / 3".',
        )
    if not text.strip():
        raise ExpressionError("combine: the expression is empty.", hint='e.g. combine: "(a + 2*b) / 3".')
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"combine: the expression has {len(text)} characters (limit {MAX_LENGTH}).",
            hint="combine fewer terms, or weights per reward.",
        )
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" and the like: the SyntaxError says it
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text.strip(), mode="eval")
        node = _convert(tree.body, text, frozenset(names), 0)
    except SyntaxError as exc:
        raise ExpressionError(
            f"combine: syntax error in {text!r:.80} at column {exc.offset}: {exc.msg}.",
            hint="only + - * /, parentheses, numbers, aliases, min, max, clip.",
        ) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            f"combine: the expression {text[:40]!r}... is nested more than {MAX_DEPTH} levels "
            "deep (each term of a long a + b + ... is one level).",
            hint="use fewer parentheses and terms.",
        ) from None
    _check_constants(node, text)
    linear = linear_form(node)
    if linear is not None and not all(math.isfinite(c) for c in (*linear[0].values(), linear[1])):
        raise ExpressionError(
            f"combine: {text!r} multiplies out to a weight that is not a finite number.",
            hint="use smaller constants (scores are finite numbers).",
        )
    if linear is not None and linear[0] and not any(linear[0].values()):
        raise ExpressionError(
            f"combine: {text!r} multiplies every reward by 0, so every row would score {linear[1]:g}.",
            hint="give at least one reward a weight other than 0.",
        )
    return node


def _constant(node: Node) -> float:
    """Value of an alias-free subtree (inf when it overflows, NaN when it divides by zero)."""
    try:
        return evaluate(node, {})
    except Overflow:
        return math.inf


def _check_constants(node: Node, text: str) -> None:
    """Refuse a constant part that is undefined or overflows (`a/0`, `1e200*1e200`): every row would be None
    (or the weights infinite) without a word."""
    if isinstance(node, Num):
        return
    if not aliases(node):
        value = _constant(node)
        if math.isnan(value):
            raise ExpressionError(f"combine: {text!r} divides by a constant zero.", hint="fix the divisor.")
        if math.isinf(value):
            raise ExpressionError(
                f"combine: {text!r} has a constant part that overflows to infinity.", hint="use smaller constants."
            )
        return
    if isinstance(node, Call) and node.func == "clip":
        lo, hi = node.args[1], node.args[2]
        if not aliases(lo) and not aliases(hi) and _constant(lo) >= _constant(hi):
            low, high = _constant(lo), _constant(hi)
            raise ExpressionError(
                f"combine: {text!r}: {render(node)} has its lower bound {low:g} "
                f"{'above' if low > high else 'equal to'} its upper bound {high:g}, so every row would score {high:g}.",
                hint="clip(x, lower, upper) with lower < upper, e.g. clip(em, 0, 1).",
            )
    if isinstance(node, Bin) and node.op == "/" and not aliases(node.right) and _constant(node.right) == 0:
        raise ExpressionError(f"combine: {text!r} divides by a constant zero.", hint="fix the divisor.")
    for child in (node.left, node.right) if isinstance(node, Bin) else node.args if isinstance(node, Call) else ():
        _check_constants(child, text)


def _fail(node: ast.AST, text: str, what: str) -> ExpressionError:
    col = getattr(node, "col_offset", 0)
    return ExpressionError(
        f"combine: {what} at column {col + 1} of {text!r} is not allowed.",
        hint="only + - * /, parentheses, numbers, reward aliases, min(...), max(...), clip(x, lo, hi).",
    )


def _convert(node: ast.AST, text: str, names: frozenset[str], depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise RecursionError
    depth += 1
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _fail(node, text, f"the constant {node.value!r}")
        try:
            value = float(node.value)
        except OverflowError:  # an integer literal beyond float range
            raise _fail(node, text, "a number too large for a float") from None
        if not math.isfinite(value):
            raise _fail(node, text, "a non-finite number")
        return Num(value)
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise ExpressionError(
                f"combine: unknown alias {node.id!r} in {text!r}.{closest(node.id, names)} "
                f"Declared aliases: {', '.join(sorted(names)) or '(none)'}."
            )
        return Var(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return Bin(
            _OPS[type(node.op)], _convert(node.left, text, names, depth), _convert(node.right, text, names, depth)
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _convert(node.operand, text, names, depth)
        return Bin("*", Num(-1.0), inner) if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Call):
        func = node.func.id if isinstance(node.func, ast.Name) else None
        if func not in FUNCTIONS or node.keywords:
            raise _fail(node, text, f"the call {ast.unparse(node.func)}(...)")
        low, high = FUNCTIONS[func]
        if len(node.args) < low or (high is not None and len(node.args) > high):
            want = f"exactly {low}" if low == high else f"at least {low}"
            raise ExpressionError(f"combine: {func}() takes {want} arguments, got {len(node.args)} in {text!r}.")
        return Call(func, tuple(_convert(a, text, names, depth) for a in node.args))
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        raise _fail(node, text, f"the operator {type(node.op).__name__}")
    raise _fail(node, text, f"the construct {type(node).__name__}")


def evaluate(node: Node, values: dict[str, float]) -> float:
    """Value of the tree for one row; division by zero gives NaN (the caller turns it into None), which every
    later step keeps; a step that turns finite values into inf or NaN raises Overflow."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Var):
        return values[node.name]
    if isinstance(node, Bin):
        a, b = evaluate(node.left, values), evaluate(node.right, values)
        if math.isnan(a) or math.isnan(b):
            return math.nan
        if node.op == "/" and b == 0:
            return math.nan
        try:
            result = a + b if node.op == "+" else a - b if node.op == "-" else a * b if node.op == "*" else a / b
        except OverflowError:  # float division can raise instead of returning inf
            raise Overflow from None
        if not math.isfinite(result):
            raise Overflow
        return result
    args = [evaluate(a, values) for a in node.args]
    if any(math.isnan(a) for a in args):  # min/max would depend on the argument order
        return math.nan
    if node.func == "clip":
        if args[1] > args[2]:  # bounds that come from rewards crossed on this row: no meaningful value
            raise CrossedBounds(
                f"combine: {render(node)}: the lower bound {args[1]:g} is above the upper bound {args[2]:g} "
                f"for the scores {values}.",
                hint="bound clip with expressions that keep lower <= upper, e.g. clip(a, 0, max(b, 0)).",
            )
        return min(max(args[0], args[1]), args[2])
    return min(args) if node.func == "min" else max(args)


def linear_form(node: Node) -> tuple[dict[str, float], float] | None:
    """(coefficients, constant) when the tree is linear in its aliases, else None."""
    if isinstance(node, Num):
        return {}, node.value
    if isinstance(node, Var):
        return {node.name: 1.0}, 0.0
    if isinstance(node, Call):
        return None
    left, right = linear_form(node.left), linear_form(node.right)
    if left is None or right is None:
        return None
    (lc, lk), (rc, rk) = left, right
    if node.op in "+-":
        sign = 1.0 if node.op == "+" else -1.0
        coeffs = dict(lc)
        for name, c in rc.items():
            coeffs[name] = coeffs.get(name, 0.0) + sign * c
        return coeffs, lk + sign * rk
    if node.op == "*":
        if lc and rc:
            return None
        scale, (coeffs, const) = (lk, right) if not lc else (rk, left)
        return {n: c * scale for n, c in coeffs.items()}, const * scale
    if rc or rk == 0:  # division by an alias is not linear; by zero is not a weight
        return None
    return {n: c / rk for n, c in lc.items()}, lk / rk


def render(node: Node) -> str:
    """The tree as expression text (for messages)."""
    if isinstance(node, Num):
        return f"{node.value:g}"
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Bin):
        return f"({render(node.left)} {node.op} {render(node.right)})"
    return f"{node.func}({', '.join(render(a) for a in node.args)})"


def aliases(node: Node) -> set[str]:
    """Aliases the tree uses."""
    if isinstance(node, Var):
        return {node.name}
    if isinstance(node, Bin):
        return aliases(node.left) | aliases(node.right)
    if isinstance(node, Call):
        return set().union(*(aliases(a) for a in node.args))
    return set()
