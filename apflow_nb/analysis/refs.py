"""Column references of the filter language: ``status``, ``inputs.model``, ``result.metrics.f1``,
``inputs["a.b"]`` (a key with dots or other odd characters), ``result.layers[0]`` (a list item).

A reference is read from Python syntax (``ast``), never evaluated. The same form names columns in
``where=``, ``order_by=`` and ``columns=``.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Union

from apflow_nb.analysis.errors import WhereError

Key = Union[str, int]
JSON_ROOTS = ("inputs", "result")


@dataclass(frozen=True)
class Ref:
    """A column (``column``) and, for JSON columns, a key path inside it."""

    column: str
    path: tuple[Key, ...] = ()
    position: int = 0

    @property
    def name(self) -> str:
        """The frame's column name: the column and keys joined with dots (list items as ``[0]``)."""
        text = self.column
        for key in self.path:
            text += f"[{key}]" if isinstance(key, int) else f".{key}"
        return text


def ref_of(node: ast.AST, expression: str, argument: str = "where") -> Ref:
    """The reference an AST node spells, or a WhereError saying what is not allowed there."""
    keys: list[Key] = []
    start = node
    while True:
        if isinstance(node, ast.Name):
            keys.reverse()
            return Ref(node.id, tuple(keys), _offset(start, expression))
        if isinstance(node, ast.Attribute):
            keys.append(node.attr)
            node = node.value
            continue
        if isinstance(node, ast.Subscript):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, (str, int)) and not isinstance(key.value, bool):
                keys.append(key.value)
                node = node.value
                continue
            raise WhereError("a key in [...] must be a string or an integer literal, e.g. inputs[\"a.b\"] or "
                             "result.items[0]", expression, _offset(key, expression), argument)
        raise WhereError(f"{describe(node)} cannot name a column; write a column such as status, inputs.model or "
                         f"result[\"odd key\"]", expression, _offset(node, expression), argument)


def parse_ref(text: str, argument: str) -> Ref:
    """A reference written as text (an ``order_by`` or ``columns`` entry)."""
    tree = parse(text, argument)
    return ref_of(tree.body, text, argument)


def parse(text: str, argument: str) -> ast.Expression:
    """``text`` as a Python expression, with a WhereError (position included) for a syntax error."""
    wrap = "\n" in text  # in parentheses, so an expression may span lines (positions move back by the "(")
    try:
        tree = ast.parse("(" + text + "\n)" if wrap else text, mode="eval")
    except SyntaxError as exc:
        lineno = exc.lineno or 1
        position = _position(text, lineno, (exc.offset or 1) - 1 - (wrap and lineno == 1))
        hint = ""
        word = text[position:].split(".")[0].split()[0] if text[position:].strip() else ""
        import keyword

        if keyword.iskeyword(word.strip("[]()\"'")):
            hint = f"; {word!r} is a Python keyword: write it as a key, e.g. inputs[\"{word}\"]"
        raise WhereError(f"not a valid expression: {exc.msg}{hint}", text, position, argument) from None
    except ValueError as exc:  # e.g. a NUL character
        raise WhereError(f"not a valid expression: {exc}", text, None, argument) from None
    for node in ast.walk(tree) if wrap else ():
        if getattr(node, "lineno", None) == 1:
            node.col_offset -= 1
    return tree


def describe(node: ast.AST) -> str:
    """A short name for a construct the language does not allow."""
    names = {ast.Call: "a function call", ast.Lambda: "a lambda", ast.BinOp: "arithmetic",
             ast.Starred: "a starred expression", ast.IfExp: "a conditional expression",
             ast.ListComp: "a comprehension", ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
             ast.GeneratorExp: "a comprehension", ast.Dict: "a dict", ast.NamedExpr: "an assignment",
             ast.Await: "await", ast.JoinedStr: "an f-string", ast.Slice: "a slice", ast.Constant: "a literal",
             ast.Compare: "a comparison", ast.BoolOp: "and/or", ast.UnaryOp: "an operator",
             ast.List: "a list", ast.Tuple: "a tuple", ast.Set: "a set",
             ast.Attribute: "an attribute of something that is not a column",
             ast.Subscript: "a subscript of something that is not a column"}
    for kind, name in names.items():
        if isinstance(node, kind):
            return name
    return type(node).__name__


def _offset(node: ast.AST, text: str) -> int:
    return _position(text, getattr(node, "lineno", 1), getattr(node, "col_offset", 0))


def _position(text: str, lineno: int, col: int) -> int:
    lines = text.split("\n")
    before = sum(len(line) + 1 for line in lines[:max(lineno - 1, 0)])
    line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
    # ast offsets count UTF-8 bytes; the message points at characters
    col = len(line.encode("utf-8")[:max(col, 0)].decode("utf-8", errors="ignore"))
    return min(before + col, len(text))
