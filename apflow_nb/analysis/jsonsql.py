"""Typed access to a value inside a JSON column, per database: SQLite JSON1, PostgreSQL json/jsonb
operators, DuckDB's JSON functions.

Paths are written into the SQL as quoted string literals (built here from checked keys, single quotes
doubled), so SQLite can match them against an expression index; values compared with them are always
bound parameters. Each dialect answers the same questions: is the value at a path a number / a string /
true / false / null or missing, what is it as a number or as text, and what is it as JSON text.
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Double, Numeric, String, Text, case, cast, func, literal_column, or_, type_coerce

from apflow_nb.analysis.errors import WhereError
from apflow_nb.analysis.refs import Key


def sql_string(text: str) -> Any:
    """``text`` as a SQL string literal (single quotes doubled): for paths only, never for user values."""
    if "\x00" in text:
        raise WhereError("a key cannot contain a NUL character")
    return literal_column("'" + text.replace("'", "''") + "'", String)


class JsonAccess:
    """The JSON operations of one dialect. ``col`` is a JSON column expression, ``path`` a tuple of keys."""

    name = "generic"

    def __init__(self, jsonb: bool = False):
        self.jsonb = jsonb

    # what every dialect provides
    def extract(self, col: Any, path: Sequence[Key]) -> Any:
        """The value in the database's native form (SQLite only: index-friendly json_extract)."""
        raise NotImplementedError

    def number(self, col: Any, path: Sequence[Key]) -> Any:
        raise NotImplementedError

    BOOLEAN = "boolean"  # what type_of() calls a JSON boolean (whose text() is true or false)

    def type_of(self, col: Any, path: Sequence[Key]) -> Any:
        """The JSON type name the database gives the value at ``path``."""
        raise NotImplementedError

    def text(self, col: Any, path: Sequence[Key]) -> Any:
        """The value at ``path`` as unquoted text."""
        raise NotImplementedError

    def string(self, col: Any, path: Sequence[Key]) -> Any:
        """The value as text when it is a JSON string (the index-friendly form on SQLite), else NULL."""
        return self.text(col, path)

    def string_guard(self, col: Any, path: Sequence[Key]) -> Any:
        raise NotImplementedError

    def number_guard(self, col: Any, path: Sequence[Key]) -> Any:
        raise NotImplementedError

    def boolean(self, col: Any, path: Sequence[Key], value: bool) -> Any:
        return (self.type_of(col, path) == self.BOOLEAN) & (self.text(col, path) == ("true" if value else "false"))

    def missing(self, col: Any, path: Sequence[Key]) -> Any:
        """True when the path is absent or holds JSON null."""
        raise NotImplementedError

    def json_text(self, col: Any, path: Sequence[Key]) -> Any:
        """The value at ``path`` as JSON text (objects, lists, strings quoted), NULL when absent."""
        raise NotImplementedError


def _json_path(path: Sequence[Key], dialect: str) -> str:
    """``$."a"."b.c"[0]`` for SQLite and DuckDB."""
    out = "$"
    for key in path:
        if isinstance(key, int):
            if key < 0:
                raise WhereError(f"list index {key} is negative; use 0, 1, ...")
            out += f"[{key}]"
            continue
        if '"' in key:
            if dialect == "sqlite":
                raise WhereError(f"the key {key!r} contains a double quote, which SQLite's JSON paths cannot "
                                 f"address; filter the frame in pandas instead")
            key = key.replace("\\", "\\\\").replace('"', '\\"')
        out += f'."{key}"'
    return out


class SQLiteJson(JsonAccess):
    """SQLite JSON1: ``json_extract`` gives SQL values (true/false as 1/0), ``json_type`` the JSON type."""

    name = "sqlite"

    def _path(self, path: Sequence[Key]) -> Any:
        return sql_string(_json_path(path, "sqlite"))

    def extract(self, col: Any, path: Sequence[Key]) -> Any:
        return func.json_extract(col, self._path(path))

    def type_of(self, col: Any, path: Sequence[Key]) -> Any:
        return func.json_type(col, self._path(path))

    def number(self, col: Any, path: Sequence[Key]) -> Any:
        return case((self.number_guard(col, path), self.extract(col, path)))

    def number_guard(self, col: Any, path: Sequence[Key]) -> Any:
        return self.type_of(col, path).in_(["integer", "real"])

    def string(self, col: Any, path: Sequence[Key]) -> Any:
        return type_coerce(self.extract(col, path), String)

    def string_guard(self, col: Any, path: Sequence[Key]) -> Any:
        return self.type_of(col, path) == "text"

    def boolean(self, col: Any, path: Sequence[Key], value: bool) -> Any:
        return self.type_of(col, path) == ("true" if value else "false")

    def missing(self, col: Any, path: Sequence[Key]) -> Any:
        return self.extract(col, path).is_(None)

    def json_text(self, col: Any, path: Sequence[Key]) -> Any:
        if not path:
            return type_coerce(col, String)
        # json_quote keeps objects and lists (they carry JSON's subtype) and quotes strings; true/false come
        # back from json_extract as 1/0, so they are spelled out from json_type
        kind = self.type_of(col, path)
        return case((kind == "true", "true"), (kind == "false", "false"),
                    else_=func.json_quote(self.extract(col, path)))


class PostgresJson(JsonAccess):
    """PostgreSQL: ``#>`` (json) and ``#>>`` (text) with a text[] path; casts guarded by json(b)_typeof."""

    name = "postgresql"

    def _path(self, path: Sequence[Key]) -> Any:
        items = []
        for key in path:
            text = str(key)
            items.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
        return sql_string("{" + ",".join(items) + "}")

    def node(self, col: Any, path: Sequence[Key]) -> Any:
        return col.op("#>")(self._path(path)) if path else col

    def text(self, col: Any, path: Sequence[Key]) -> Any:
        if not path:
            return type_coerce(col.op("#>>")(literal_column("'{}'")), Text)
        return type_coerce(col.op("#>>")(self._path(path)), Text)

    def type_of(self, col: Any, path: Sequence[Key]) -> Any:
        return (func.jsonb_typeof if self.jsonb else func.json_typeof)(self.node(col, path))

    def number(self, col: Any, path: Sequence[Key]) -> Any:
        return case((self.number_guard(col, path), cast(self.text(col, path), Numeric)))

    def number_guard(self, col: Any, path: Sequence[Key]) -> Any:
        return self.type_of(col, path) == "number"

    def string_guard(self, col: Any, path: Sequence[Key]) -> Any:
        return self.type_of(col, path) == "string"

    def missing(self, col: Any, path: Sequence[Key]) -> Any:
        return or_(self.node(col, path).is_(None), self.type_of(col, path) == "null")

    def json_text(self, col: Any, path: Sequence[Key]) -> Any:
        return cast(self.node(col, path), Text)


class DuckDBJson(JsonAccess):
    """DuckDB: ``json_extract_string`` (text), ``json_type`` (VARCHAR, BIGINT, UBIGINT, DOUBLE, BOOLEAN, NULL...)."""

    name = "duckdb"
    BOOLEAN = "BOOLEAN"
    NUMBERS = ["BIGINT", "UBIGINT", "DOUBLE", "HUGEINT", "INTEGER"]

    def _path(self, path: Sequence[Key]) -> Any:
        return sql_string(_json_path(path, "duckdb"))

    def type_of(self, col: Any, path: Sequence[Key]) -> Any:
        return func.json_type(col, self._path(path))

    def text(self, col: Any, path: Sequence[Key]) -> Any:
        return type_coerce(func.json_extract_string(col, self._path(path)), String)

    def number(self, col: Any, path: Sequence[Key]) -> Any:
        return case((self.number_guard(col, path), cast(self.text(col, path), Double)))  # FLOAT is 32-bit

    def number_guard(self, col: Any, path: Sequence[Key]) -> Any:
        return self.type_of(col, path).in_(self.NUMBERS)

    def string_guard(self, col: Any, path: Sequence[Key]) -> Any:
        return self.type_of(col, path) == "VARCHAR"

    def missing(self, col: Any, path: Sequence[Key]) -> Any:
        return or_(self.type_of(col, path).is_(None), self.type_of(col, path) == "NULL")

    def json_text(self, col: Any, path: Sequence[Key]) -> Any:
        return cast(func.json_extract(col, self._path(path)), String) if path else cast(col, String)


def json_access(dialect: str, jsonb: bool = False) -> JsonAccess:
    if dialect == "sqlite":
        return SQLiteJson()
    if dialect == "postgresql":
        return PostgresJson(jsonb)
    if dialect == "duckdb":
        return DuckDBJson()
    raise WhereError(f"filtering inside JSON columns is not supported on {dialect!r} (SQLite, PostgreSQL and "
                     f"DuckDB are)")
