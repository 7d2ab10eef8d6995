"""The filter language compiled to SQLAlchemy expressions (bound parameters for every value).

``StoreFields`` says what each column name means in one store (its SQL expression and kind);
``compile_where`` turns a parsed ``where=`` into a WHERE clause; ``order_terms`` turns ``order_by=`` into
ORDER BY terms (numbers before text, missing values last in either direction).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import BigInteger, Double, Float, and_, case, cast, false, func, literal, or_, true

from apflow_nb.analysis import duckdb_compat
from apflow_nb.analysis.errors import WhereError
from apflow_nb.analysis.jsonsql import JsonAccess, json_access
from apflow_nb.analysis.refs import Ref
from apflow_nb.analysis.where import And, Compare, Node, Not, Or

TEXT, INT, FLOAT, BOOL, TIME, JSON = "text", "int", "float", "bool", "time", "json"
NUMBER_KINDS = (INT, FLOAT)
TRACEBACK_MARK = "\n\nTraceback (most recent call last):"
INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Field:
    """A column of the language: its SQL expression and the kind of values it holds."""

    name: str
    expr: Any
    kind: str
    jsonb: bool = False


class StoreFields:
    """The columns ``where=`` / ``order_by=`` / ``columns=`` may name in one store's task table."""

    def __init__(self, dialect: str, tbl: Any, custom: Sequence[tuple[str, str]] = ()):
        from apflow_nb.analysis.query import executor_column

        self.dialect, self.tbl = dialect, tbl
        c = tbl.c
        fields = [Field("task_id", c.id, TEXT), Field("parent_id", c.parent_id, TEXT), Field("name", c.name, TEXT),
                  Field("executor", executor_column(c, dialect), TEXT), Field("status", c.status, TEXT),
                  Field("priority", c.priority, INT), Field("user_id", c.user_id, TEXT),
                  Field("progress", c.progress, FLOAT),
                  Field("key", func.coalesce(c.key, c.id) if "key" in c else c.id, TEXT),
                  Field("error", self.error_message(), TEXT),
                  Field("error_type", self.result_text("error_type"), TEXT),
                  Field("traceback", self.traceback(), TEXT),
                  Field("duration_s", self.duration(), FLOAT),
                  Field("inputs", c.inputs, JSON, _is_jsonb(c.inputs)),
                  Field("result", c.result, JSON, _is_jsonb(c.result))]
        fields += [Field(n, c[n], TIME) for n in ("created_at", "started_at", "completed_at")]
        if "root_id" in c:
            fields.append(Field("root_id", func.coalesce(c.root_id, c.id), TEXT))
        fields += [Field(n, c[n], k) for n, k in (("attempts", INT), ("cached_from", TEXT)) if n in c]
        fields += [Field(name, c[name], kind if kind in (TEXT, INT, FLOAT, BOOL, TIME, JSON) else TEXT,
                         _is_jsonb(c[name])) for name, kind in custom]
        self.fields = {f.name: f for f in fields}

    # -- computed columns, the same values the frame shows ------------------------------------------
    def json_access(self, field: Field) -> JsonAccess:
        return json_access(self.dialect, field.jsonb)

    def result_text(self, key: str) -> Any:
        """``result[key]`` of a failed or cancelled task as text (the engine's error details)."""
        c = self.tbl.c
        access = json_access(self.dialect, _is_jsonb(c.result))
        return case((c.status.in_(["failed", "cancelled"]),
                     case((access.string_guard(c.result, (key,)), access.string(c.result, (key,))))))

    def error_message(self) -> Any:
        """The stored error without the traceback after it; for a cancelled task the engine's message."""
        c = self.tbl.c
        if self.dialect == "sqlite":
            at = func.instr(c.error, TRACEBACK_MARK)
            message = case((at > 0, func.substr(c.error, 1, at - 1)), else_=c.error)
        else:
            message = func.split_part(c.error, TRACEBACK_MARK, 1)
        return func.coalesce(message, case((c.status == "cancelled", self.result_text("message"))))

    def traceback(self) -> Any:
        c = self.tbl.c
        if self.dialect == "sqlite":
            at = func.instr(c.error, TRACEBACK_MARK)
            from_error = case((at > 0, func.substr(c.error, at + 2)))
        else:
            from_error = case((func.strpos(c.error, TRACEBACK_MARK) > 0,
                               func.substr(c.error, func.strpos(c.error, TRACEBACK_MARK) + 2)))
        return func.coalesce(self.result_text("traceback"), from_error)

    def duration(self) -> Any:
        c = self.tbl.c
        if self.dialect == "sqlite":  # exact to the microsecond: whole seconds plus the fraction's text
            def seconds(col: Any) -> Any:
                return cast(func.strftime("%s", col), BigInteger) + cast(func.substr(col, 20), Float)
            return seconds(c.completed_at) - seconds(c.started_at)
        if self.dialect == "duckdb":
            return (duckdb_compat.timestamp_expr(c.completed_at) - duckdb_compat.timestamp_expr(c.started_at)) / 1e6
        return func.extract("epoch", c.completed_at - c.started_at)

    # -- names -> fields ---------------------------------------------------------------------------
    def resolve(self, ref: Ref, expression: str, argument: str) -> Field:
        field = self.fields.get(ref.column)
        if field is None:
            if ref.column == "depth":
                raise WhereError("depth is computed after reading (from parent links), so it cannot be filtered "
                                 "in SQL; filter the frame instead: h[h.depth == 1]", expression, ref.position,
                                 argument)
            if ref.column == "root_id":
                raise WhereError("this store has no root_id column (an original aipartnerupflow store); use "
                                 "history(root_id=...) for one run", expression, ref.position, argument)
            raise WhereError(f"unknown column {ref.column!r}; columns: {', '.join(sorted(self.fields))} "
                             f"(keys inside inputs and result: inputs.<key>, result[\"<key>\"])",
                             expression, ref.position, argument)
        if ref.path and field.kind != JSON:
            raise WhereError(f"{ref.column!r} is not a JSON column, so {ref.name!r} has no keys",
                             expression, ref.position, argument)
        return field


_fields_cache: dict[tuple, tuple[Any, StoreFields]] = {}


def store_fields(dialect: str, tbl: Any, custom: Sequence[tuple[str, str]]) -> tuple[Any, StoreFields]:
    """(table, fields) for a reflected task table, the same objects again while its columns stay the same
    (building the fields' SQL expressions costs more than a small query). Use the returned table."""
    key = (dialect, tuple((col.name, repr(col.type)) for col in tbl.c))
    found = _fields_cache.get(key)
    if found is None:
        if len(_fields_cache) > 64:
            _fields_cache.clear()
        found = _fields_cache[key] = (tbl, StoreFields(dialect, tbl, custom))
    return found


def _is_jsonb(col: Any) -> bool:
    return type(col.type).__name__.upper() == "JSONB"


# -- where ----------------------------------------------------------------------------------------
def compile_where(node: Node, fields: StoreFields, expression: str) -> Any:
    """A WHERE clause for a parsed ``where=`` (see where.py for the meaning of each construct)."""
    if isinstance(node, And):
        return and_(*(compile_where(n, fields, expression) for n in node.items))
    if isinstance(node, Or):
        return or_(*(compile_where(n, fields, expression) for n in node.items))
    if isinstance(node, Not):  # two-valued: the exact complement, missing values included
        return compile_where(node.item, fields, expression).is_not(true())
    return _compare(node, fields, expression)


def _compare(cmp: Compare, fields: StoreFields, expression: str) -> Any:
    field = fields.resolve(cmp.ref, expression, "where")
    if cmp.op in ("!=", "not in"):
        positive = Compare(cmp.ref, "==" if cmp.op == "!=" else "in", cmp.value, cmp.position)
        return _compare(positive, fields, expression).is_not(true())
    if field.kind == JSON:
        return _json_compare(cmp, field, fields, expression)
    return _plain_compare(cmp, field, fields, expression)


def _check_value(cmp: Compare, value: Any, expression: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        raise WhereError(f"{value} is outside the 64-bit integer range stores can compare", expression, cmp.position)
    if isinstance(value, str) and "\x00" in value:
        raise WhereError("a string cannot contain a NUL character (PostgreSQL text cannot hold one)", expression,
                         cmp.position)
    if isinstance(value, float) and not math.isfinite(value):
        raise WhereError(f"{value} cannot be compared (not a finite number)", expression, cmp.position)


def _json_compare(cmp: Compare, field: Field, fields: StoreFields, expression: str) -> Any:
    access = json_access(fields.dialect, field.jsonb)
    col, path = field.expr, cmp.ref.path
    if cmp.op == "is":
        return access.missing(col, path)
    if cmp.op == "is not":
        return access.missing(col, path).is_not(true())
    values = cmp.value if cmp.op == "in" else (cmp.value,)
    for value in values:
        _check_value(cmp, value, expression)
    if cmp.op == "in":
        return _json_in(access, col, path, values)
    value = cmp.value
    if isinstance(value, bool):
        if cmp.op != "==":
            raise WhereError(f"True and False can only be compared with == or != (not {cmp.op})", expression,
                             cmp.position)
        return access.boolean(col, path, value)
    if isinstance(value, str):
        return and_(_op(access.string(col, path), cmp.op, value), access.string_guard(col, path))
    if fields.dialect == "sqlite":  # the guard beside a plain json_extract keeps an expression index usable
        return and_(_op(access.extract(col, path), cmp.op, value), access.number_guard(col, path))
    return _op(access.number(col, path), cmp.op, value)


def _json_in(access: JsonAccess, col: Any, path: Sequence[Any], values: Sequence[Any]) -> Any:
    strings = [v for v in values if isinstance(v, str)]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    parts = []
    if strings:
        parts.append(and_(access.string(col, path).in_(strings), access.string_guard(col, path)))
    if numbers:
        number = access.extract(col, path) if access.name == "sqlite" else access.number(col, path)
        parts.append(and_(number.in_([_bind(v) for v in numbers]), access.number_guard(col, path)))
    parts += [access.boolean(col, path, v) for v in {v for v in values if isinstance(v, bool)}]
    if any(v is None for v in values):
        parts.append(access.missing(col, path))
    return or_(*parts) if parts else false()


def _bind(value: Any) -> Any:
    """A bound parameter; floats as DOUBLE (DuckDB would otherwise compare with a 32-bit FLOAT: 0.1 != 0.1)."""
    return literal(value, Double()) if isinstance(value, float) else literal(value)


def _op(expr: Any, op: str, value: Any) -> Any:
    return {"==": expr.__eq__, "<": expr.__lt__, "<=": expr.__le__, ">": expr.__gt__,
            ">=": expr.__ge__}[op](_bind(value))


KIND_WORDS = {TEXT: "text: compare it with a string", INT: "numbers: compare it with a number",
              FLOAT: "numbers: compare it with a number", BOOL: "True/False: compare it with True or False",
              TIME: "times: compare it with ISO 8601 text such as '2026-01-31T12:00:00'"}


def _plain_compare(cmp: Compare, field: Field, fields: StoreFields, expression: str) -> Any:
    expr = field.expr
    if field.kind == TIME and fields.dialect == "duckdb":  # compared as epoch microseconds (see duckdb_compat)
        expr = duckdb_compat.timestamp_expr(expr)
    if cmp.op == "is":
        return expr.is_(None)
    if cmp.op == "is not":
        return expr.is_not(None)
    values = [_plain_value(cmp, field, fields, v, expression) for v in (cmp.value if cmp.op == "in" else (cmp.value,))]
    if cmp.op == "in":
        present = [v for v in values if v is not None]
        parts = [expr.in_(present)] if present else []
        if len(present) < len(values):
            parts.append(expr.is_(None))
        return or_(*parts) if parts else false()
    if field.kind == BOOL and cmp.op != "==":
        raise WhereError(f"{field.name!r} holds True/False: compare it with == or !=", expression, cmp.position)
    return _op(expr, cmp.op, values[0])


def _plain_value(cmp: Compare, field: Field, fields: StoreFields, value: Any, expression: str) -> Any:
    if value is None:
        return None
    _check_value(cmp, value, expression)
    kind = field.kind
    ok = {TEXT: isinstance(value, str), INT: _is_number(value), FLOAT: _is_number(value),
          BOOL: isinstance(value, bool), TIME: isinstance(value, str)}[kind]
    if not ok:
        raise WhereError(f"{field.name!r} holds {KIND_WORDS[kind]} (got {value!r})", expression, cmp.position)
    if kind == TIME:
        from apflow_nb.analysis.checks import as_datetime

        moment = as_datetime(value)
        if moment is None:
            raise WhereError(f"{value!r} is not an ISO 8601 time (e.g. '2026-01-31' or '2026-01-31T12:00:00Z')",
                             expression, cmp.position)
        if fields.dialect == "sqlite":  # stored as naive UTC text
            return moment.replace(tzinfo=None)
        if fields.dialect == "duckdb":
            return round(moment.timestamp() * 1_000_000)
        return moment
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- order_by --------------------------------------------------------------------------------------
def order_terms(items: Sequence[tuple[Ref, bool]], fields: StoreFields, expression: str = "") -> list[Any]:
    """ORDER BY terms for (ref, descending) pairs: JSON values by number, then by text; missing values last."""
    terms: list[Any] = []
    for ref, descending in items:
        field = fields.resolve(ref, ref.name, "order_by")
        direction = (lambda e: e.desc().nulls_last()) if descending else (lambda e: e.asc().nulls_last())
        if field.kind == JSON:
            access = json_access(fields.dialect, field.jsonb)
            terms.append(direction(access.number(field.expr, ref.path)))
            terms.append(direction(case((access.string_guard(field.expr, ref.path),
                                         access.string(field.expr, ref.path)))))
            terms.append(direction(case((access.boolean(field.expr, ref.path, True), literal(1)),
                                        (access.boolean(field.expr, ref.path, False), literal(0)))))
        else:
            terms.append(direction(field.expr))
    return terms

