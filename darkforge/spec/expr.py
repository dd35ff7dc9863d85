"""Parameter references inside block definitions: `$width` (the value itself) and `${width * 4}`
(arithmetic on parameters and `in_channels`).

Expressions are evaluated by walking Python's AST with a whitelist (numbers, names, + - * / // % **,
comparisons, and/or/not, min/max/round/int): no `eval`, no attribute access, no calls of anything
else, and small integers only, so a file can never run code or build a huge number.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

Value = int | float | bool | str
_WHOLE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_EXPR = re.compile(r"^\$\{(.*)\}$", re.DOTALL)
MAX_MAGNITUDE = 10**12  # channel counts and the like; anything larger is a mistake or an attack

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "round": round, "int": int}


class ExprError(ValueError):
    """A reference or expression that cannot be evaluated; the message says why."""


def is_reference(value: object) -> bool:
    return isinstance(value, str) and (bool(_WHOLE.match(value)) or bool(_EXPR.match(value)))


def substitute(value: Any, names: Mapping[str, Value]) -> Any:
    """`value` with every `$name` / `${expr}` string (at any depth of lists and mappings) replaced."""
    if isinstance(value, str):
        if match := _WHOLE.match(value):
            return _lookup(match.group(1), names)
        if match := _EXPR.match(value):
            return evaluate(match.group(1), names)
        return value
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    return value


def evaluate(text: str, names: Mapping[str, Value]) -> Value:
    if len(text) > 200:
        raise ExprError("expression longer than 200 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ExprError(f"${{{text}}} is not an expression") from None
    return _eval(tree.body, names)


def _lookup(name: str, names: Mapping[str, Value]) -> Value:
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise ExprError(f"${name}: no such parameter (known: {known})")
    return names[name]


def _eval(node: ast.AST, names: Mapping[str, Value]) -> Value:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | bool | str):
        return _small(node.value)
    if isinstance(node, ast.Name):
        return _lookup(node.id, names)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, names), _eval(node.right, names)
        if isinstance(node.op, ast.Pow) and (not isinstance(right, int) or abs(right) > 8):
            raise ExprError("powers are limited to small integer exponents")
        try:
            return _small(_BINARY[type(node.op)](left, right))
        except (ArithmeticError, TypeError) as e:
            raise ExprError(f"cannot compute {ast.unparse(node)}: {e}") from None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
        operand = _eval(node.operand, names)
        if isinstance(node.op, ast.Not):
            return not operand
        if isinstance(operand, str):
            raise ExprError(f"cannot negate {operand!r}")
        return _small(-operand)
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, names) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = _eval(node.left, names)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, names)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, names) else node.orelse, names)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        args = [_eval(a, names) for a in node.args]
        try:
            return _small(_FUNCTIONS[node.func.id](*args))
        except (TypeError, ValueError) as e:
            raise ExprError(f"cannot compute {ast.unparse(node)}: {e}") from None
    raise ExprError(f"{ast.unparse(node)!r} is not allowed (numbers, parameters and arithmetic only)")


def _small(value: Any) -> Value:
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
        raise ExprError(f"a value beyond ±{MAX_MAGNITUDE:.0e}")
    return value  # type: ignore[no-any-return]


def names_in(value: object) -> set[str]:
    """The names a `$name` / `${expr}` value reads (at any depth); none for a literal. Used to
    tell which fields of a block's layer are computed, and from what (spec/blockscale.py)."""
    if isinstance(value, list):
        return set().union(*(names_in(v) for v in value))
    if isinstance(value, dict):
        return set().union(*(names_in(v) for v in value.values()))
    if not isinstance(value, str):
        return set()
    if match := _WHOLE.match(value):
        return {match.group(1)}
    if match := _EXPR.match(value):
        try:
            tree = ast.parse(match.group(1).strip(), mode="eval")
        except SyntaxError:
            return set()  # substitute() reports it
        calls = {
            n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - calls
    return set()
