"""What the magics display: small tables (HTML in notebooks, aligned text elsewhere) and notes.

Every value that reaches HTML is escaped (text and attributes); a status that is not one of the
five task statuses (a hostile or broken writer of a shared store) is shown as ``unknown``.
"""
from __future__ import annotations

import html
import json
from typing import Any

from apflow_nb.core.extensions.registry import RegistryEntry, get_registry
from apflow_nb.core.extensions.types import ExtensionCategory

EXECUTOR = ExtensionCategory.EXECUTOR


def status_label(status: Any) -> str:
    """The status to show: one of pending, in_progress, completed, failed, cancelled, or ``unknown``."""
    from apflow_nb.core.types import STATUSES

    text = str(status) if status is not None else ""
    return text if text in STATUSES else "unknown"


def history_table(frame: Any) -> Any:
    """``%apflow history``'s DataFrame: statuses outside the five shown as ``unknown`` (pandas escapes the HTML)."""
    if "status" in getattr(frame, "columns", ()) and len(frame):
        frame = frame.copy()
        frame["status"] = [status_label(s) for s in frame["status"]]
    return frame


class Table:
    """A small table that renders as HTML in notebooks and as aligned text elsewhere."""

    def __init__(self, columns: list[str], rows: list[list[Any]], title: str = ""):
        self.columns, self.rows, self.title = columns, rows, title

    def _repr_html_(self) -> str:
        esc = lambda v: html.escape(str(v), quote=True)  # noqa: E731 - text and attribute values alike
        head = "".join(f"<th style='text-align:left'>{esc(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{esc(v)}</td>" for v in row)
                       + "</tr>" for row in self.rows)
        title = f"<b>{esc(self.title)}</b>" if self.title else ""
        return f"<div class='apflow-table'>{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"

    def __repr__(self) -> str:
        cells = [[str(v).replace("\n", " ") for v in row] for row in self.rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        lines = [self.title] if self.title else []
        lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths)).rstrip())
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


class Note(str):
    """A one-line answer (``%apflow store``) shown without quotes, still usable as a str."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def input_fields(entry: RegistryEntry) -> str:
    """``url: string*, retries: integer`` (* = required) from an executor's input schema."""
    try:
        schema = entry.create().get_input_schema() or {}
    except Exception as exc:  # an executor whose schema cannot be built is still listed
        return f"(schema error: {exc})"
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    return ", ".join(f"{name}: {_type_of(spec)}{'*' if name in required else ''}" for name, spec in props.items())


def _type_of(spec: Any) -> str:
    if not isinstance(spec, dict):
        return "any"
    if "type" in spec:
        kind = spec["type"]
        return "|".join(kind) if isinstance(kind, list) else str(kind)
    options = spec.get("anyOf") or spec.get("oneOf")
    if options:  # Optional[int] -> integer|null
        return "|".join(_type_of(o) for o in options)
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    return "any"


def kind_of(entry: RegistryEntry) -> str:
    return "function" if getattr(entry.cls, "function", None) is not None else "class"


def executors_table(ids: list[str] | None = None, title: str = "", *, with_source: bool = True) -> Table:
    """Registered executors (all, or ``ids`` in that order): id, name, kind, input fields, description."""
    registry = get_registry()
    entries = [registry.get(EXECUTOR, i) for i in ids] if ids is not None else registry.list(EXECUTOR)
    columns = ["id", "name", "kind", "inputs (* required)"] + (["source"] if with_source else []) + ["description"]
    rows = [[e.id, e.name, kind_of(e), input_fields(e)] + ([e.source] if with_source else []) + [e.description]
            for e in entries if e is not None]
    return Table(columns, rows, title)


def trial_outcome(executor_id: str, node: Any) -> Table:
    """One trial run (``%%executor --run``): status and result, or the error."""
    task = node.task
    status = status_label(task.status)
    shown = task.result if status == "completed" else (task.error or task.result)
    text = shown if isinstance(shown, str) else json.dumps(shown, default=str)
    return Table(["executor", "status", "result" if status == "completed" else "error"],
                 [[executor_id, status, text[:2000]]], title="trial run (in-memory store)")


def trial_pending(executor_id: str) -> Table:
    return Table(["executor", "status", "result"], [[executor_id, "running", ""]], title="trial run (in-memory store)")
