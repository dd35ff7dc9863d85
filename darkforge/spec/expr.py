"""Parameter references inside block definitions: `$width` (the value itself) and `${width * 4}`
(arithmetic on parameters and `in_channels`).

Expressions are evaluated by walking Python's AST with a whitelist (numbers, names, + - * / // % **,
comparisons, and/or/not, min/max/round/int): no `eval`, no attribute access, no calls of anything
else. Every value stays small (numbers within ±1e12, strings of at most 200 characters) and each
operation is checked *before* it runs where running it could take long or allocate much
(`"a" * 10**12`, `round(1, -10**9)`, `"%999999999d" % 1`), so a file can never run code, build a
huge value or spend minutes in one expression.
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
MAX_STRING = 200  # characters of a string value (an activation name, an id)
MAX_LENGTH = 200  # characters of one expression
MAX_NDIGITS = 12  # round(x, n): |n| past the magnitude limit only costs time (10**n is built)

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
# `channels(lateral)`: the channels of a block's input by its name (a block of several inputs, a
# head reading P3's width); the names passed in are "channels:lateral" (darkforge.spec.blocks)
CHANNELS = "channels"


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
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # NUL bytes: ValueError
        raise ExprError(f"${{{_shown(text)}}} is not an expression") from None
    return _eval(tree.body, names)


def _shown(text: str) -> str:
    return text if text.isprintable() else repr(text)[1:-1]


def _lookup(name: str, names: Mapping[str, Value]) -> Value:
    if name not in names:
        known = ", ".join(sorted(n for n in names if not n.startswith(f"{CHANNELS}:"))) or "none"
        raise ExprError(f"${name}: no such parameter (known: {known})")
    return names[name]


def _eval(node: ast.AST, names: Mapping[str, Value]) -> Value:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | bool | str):
        return _small(node.value)
    if isinstance(node, ast.Name):
        return _lookup(node.id, names)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, names), _eval(node.right, names)
        _check_binary(node, left, right)
        try:
            return _small(_BINARY[type(node.op)](left, right))
        except (ArithmeticError, TypeError, ValueError) as e:
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
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:  # "a" < 1
                raise ExprError(f"cannot compare {left!r} with {right!r}") from None
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, names) else node.orelse, names)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == CHANNELS:
        return _channels(node, names)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        args = [_eval(a, names) for a in node.args]
        if node.func.id == "round" and len(args) == 2:
            ndigits = args[1]
            if not isinstance(ndigits, int) or isinstance(ndigits, bool) or abs(ndigits) > MAX_NDIGITS:
                raise ExprError(f"round's digits must be an integer within ±{MAX_NDIGITS}")
        try:
            return _small(_FUNCTIONS[node.func.id](*args))
        except (ArithmeticError, TypeError, ValueError) as e:
            raise ExprError(f"cannot compute {ast.unparse(node)}: {e}") from None
    raise ExprError(f"{ast.unparse(node)!r} is not allowed (numbers, parameters and arithmetic only)")


def _channels(node: ast.Call, names: Mapping[str, Value]) -> Value:
    inputs = sorted(k.removeprefix(f"{CHANNELS}:") for k in names if k.startswith(f"{CHANNELS}:"))
    if len(node.args) != 1 or node.keywords or not isinstance(node.args[0], ast.Name):
        example = (inputs or ["input"])[0]
        raise ExprError(f"{ast.unparse(node)}: give one input's name, e.g. channels({example})")
    name = node.args[0].id
    if f"{CHANNELS}:{name}" not in names:
        where = (
            f"its inputs: {', '.join(inputs)}" if inputs else "only a block's layers read inputs' channels"
        )
        raise ExprError(f"channels({name}): {name} is no input of this block ({where})")
    return names[f"{CHANNELS}:{name}"]


def _check_binary(node: ast.BinOp, left: Value, right: Value) -> None:
    """Refuse, before computing it, an operation whose cost grows with its operands' values."""
    if isinstance(node.op, ast.Pow) and (not isinstance(right, int) or abs(right) > 8):
        raise ExprError("powers are limited to small integer exponents")
    if isinstance(node.op, ast.Mod) and isinstance(left, str):
        raise ExprError("strings cannot be formatted with %")
    if isinstance(node.op, ast.Mult) and (isinstance(left, str) or isinstance(right, str)):
        text, count = (left, right) if isinstance(left, str) else (right, left)
        if isinstance(count, int) and len(str(text)) * max(count, 0) > MAX_STRING:
            raise ExprError(f"a string longer than {MAX_STRING} characters")


def _small(value: Any) -> Value:
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
        raise ExprError(f"a value beyond ±{MAX_MAGNITUDE:.0e}")
    if isinstance(value, float) and value != value:  # NaN: no channel count, no `when`
        raise ExprError("the result is not a number (NaN)")
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise ExprError(f"a string longer than {MAX_STRING} characters")
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
        called = [
            (n.func.id, n.args)
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        ]
        calls = {name for name, _ in called}
        # channels(lateral) reads an input's channels: in the network's (scaled) units, as in_channels
        inputs = {a.id for name, args in called if name == CHANNELS for a in args if isinstance(a, ast.Name)}
        reads = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - calls - inputs
        return reads | ({"in_channels"} if CHANNELS in calls else set())
    return set()
