"""The ``where=`` language: Python comparison syntax, read with ``ast`` into a small tree, never evaluated.

Grammar (anything else is a WhereError naming the construct and its position)::

    expr    := expr "and" expr | expr "or" expr | "not" expr | "(" expr ")" | compare
    compare := ref op literal | literal op ref | ref "is" ["not"] "None"
               | ref ["not"] "in" "[" literal, ... "]"      (chains such as 0 < ref < 1 are and-ed)
    op      := "==" | "!=" | "<" | "<=" | ">" | ">="
    ref     := name ("." key | "[" string-or-int "]")*      e.g. inputs.model, result["a.b"], result.xs[0]
    literal := string | number | True | False | None        (a list, tuple or set of them after in)

Meaning: typed, two-valued comparisons. A number matches numbers only, a string strings only, True/False
booleans only (``inputs.x == 1`` does not match ``"1"`` or ``true``). A comparison with a missing or null
value is false, and ``not`` is its exact complement, so ``!=`` and ``not in`` include missing values (as
pandas' ``!=`` does). ``== None`` means ``is None``.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Union

from apflow_nb.analysis.errors import WhereError
from apflow_nb.analysis.refs import Ref, describe, parse, ref_of

OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.In: "in",
       ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
Scalar = Union[str, int, float, bool, None]


@dataclass(frozen=True)
class Compare:
    """``ref op value``; for in / not in, ``value`` is a tuple of scalars."""

    ref: Ref
    op: str
    value: Any
    position: int


@dataclass(frozen=True)
class And:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


Node = Union[Compare, And, Or, Not]


def parse_where(expression: str) -> Node:
    """``expression`` -> a tree of Compare / And / Or / Not, or a WhereError."""
    if not isinstance(expression, str):
        from apflow_nb.analysis.errors import FilterError

        raise FilterError("history", "where", expression, "a string such as \"inputs.model == 'm3' and "
                                                         "result.score > 0.9\"")
    if not expression.strip():
        raise WhereError("the expression is empty", expression)
    return _Reader(expression).node(parse(expression, "where").body)


class _Reader:
    def __init__(self, text: str):
        self.text = text

    def fail(self, message: str, node: ast.AST | None) -> WhereError:
        from apflow_nb.analysis.refs import _offset

        return WhereError(message, self.text, None if node is None else _offset(node, self.text))

    def node(self, node: ast.AST) -> Node:
        if isinstance(node, ast.BoolOp):
            items = tuple(self.node(v) for v in node.values)
            return And(items) if isinstance(node.op, ast.And) else Or(items)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return Not(self.node(node.operand))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
            ref = ref_of(node, self.text)
            raise self.fail(f"{ref.name!r} alone is not a condition: compare it, e.g. {ref.name} == True or "
                            f"{ref.name} is not None", node)
        if isinstance(node, ast.UnaryOp):
            raise self.fail(f"the operator {_symbol(node.op)!r} is not supported; use and, or, not, "
                            f"==, !=, <, <=, >, >=, in, not in, is None, is not None", node)
        if isinstance(node, ast.BinOp):
            raise self.binop(node)
        raise self.fail(f"{describe(node)} is not allowed here: write comparisons joined with and / or / not",
                        node)

    def binop(self, node: ast.BinOp) -> WhereError:
        if isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            word = "and" if isinstance(node.op, ast.BitAnd) else "or"
            return self.fail(f"use '{word}' instead of '{_symbol(node.op)}' (Python syntax, not pandas')", node)
        return self.fail(f"arithmetic ({_symbol(node.op)}) is not supported: compare a column with a literal "
                         f"value", node)

    def compare(self, node: ast.Compare) -> Node:
        parts, left = [], node.left
        for op_node, right in zip(node.ops, node.comparators):
            parts.append(self.one(left, OPS.get(type(op_node)), right, node))
            left = right
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def one(self, left: ast.AST, op: str | None, right: ast.AST, whole: ast.Compare) -> Compare:
        if op is None:  # pragma: no cover - every ast comparison operator is in OPS
            raise self.fail("unsupported comparison operator", whole)
        for side in (left, right):
            if isinstance(side, ast.BinOp):
                raise self.binop(side)
        left_is_ref, right_is_ref = _is_ref(left), _is_ref(right)
        if left_is_ref and right_is_ref:
            raise self.fail("compare a column with a literal value (two columns cannot be compared)", whole)
        if not left_is_ref and not right_is_ref:
            culprit = left if not _is_literal(left) else right
            if not _is_literal(culprit):
                raise self.fail(f"{describe(culprit)} is not allowed in a comparison: use a column and a literal "
                                f"(a string, number, True, False or None)", culprit)
            raise self.fail("a comparison needs a column on one side", whole)
        if not left_is_ref:
            if op not in FLIPPED:
                raise self.fail(f"write the column first: column {op} ...", whole)
            left, right, op = right, left, FLIPPED[op]
        ref = ref_of(left, self.text)
        position = ref.position
        if op in ("in", "not in"):
            if not isinstance(right, (ast.List, ast.Tuple, ast.Set)):
                raise self.fail(f"{op} needs a list of literals, e.g. {ref.name} {op} ['a', 'b']", right)
            return Compare(ref, op, tuple(self.literal(v) for v in right.elts), position)
        value = self.literal(right)
        if op in ("is", "is not"):
            if value is not None:
                raise self.fail(f"'{op}' compares with None only; use {'==' if op == 'is' else '!='} for values",
                                right)
            return Compare(ref, op, None, position)
        if value is None:
            if op not in ("==", "!="):
                raise self.fail(f"None cannot be ordered ({op}); use 'is None' or 'is not None'", right)
            return Compare(ref, "is" if op == "==" else "is not", None, position)
        return Compare(ref, op, value, position)

    def literal(self, node: ast.AST) -> Scalar:
        if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (str, int, float))):
            if isinstance(node.value, float) and node.value != node.value:  # pragma: no cover - no NaN literal
                raise self.fail("NaN cannot be compared", node)
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
                and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
            return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
        if isinstance(node, ast.Constant):
            raise self.fail(f"{type(node.value).__name__} literals are not supported; use strings, numbers, "
                            f"True, False or None", node)
        if _is_ref(node):
            raise self.fail("compare a column with a literal value (two columns cannot be compared)", node)
        if isinstance(node, ast.BinOp):
            raise self.binop(node)
        raise self.fail(f"{describe(node)} is not a literal: use a string, number, True, False or None", node)


def _is_ref(node: ast.AST) -> bool:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return isinstance(node, ast.Name)


def _is_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) or (isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant))


def _symbol(op: ast.AST) -> str:
    return {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
            ast.Pow: "**", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
            ast.MatMult: "@", ast.Invert: "~", ast.USub: "-", ast.UAdd: "+"}.get(type(op), type(op).__name__)


def refs_in(node: Node) -> list[Compare]:
    """Every comparison in the tree, in order (for checks that need them all)."""
    if isinstance(node, Compare):
        return [node]
    if isinstance(node, Not):
        return refs_in(node.item)
    return [c for item in node.items for c in refs_in(item)]
