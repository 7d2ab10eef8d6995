"""``timeline()``: a Gantt chart of one run (matplotlib, an optional extra).

Rows are labelled with the tasks' keys (the ids written in the task array), indented by depth, in
tree order. A task that took no measurable time gets a diamond where it happened, so it does not
vanish. A run with more tasks than ``max_tasks`` is drawn one row per executor (every task of it a
bar in that row, with how many there are), so the chart's height stays bounded. A task that never
ran (skipped after a failed dependency, cancelled while waiting) is a cross at the time it was settled. The legend sits
outside the plot, to its right, where it covers no bar. Colours come from the notebook palette.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from apflow_nb.analysis.palette import SKIPPED, hex_color, known
from apflow_nb.core.types import DEPENDENCY_CANCELLED, DEPENDENCY_FAILED

INSTALL = "timeline() draws with matplotlib, which is not installed: pip install 'apflow_nb[history]'"
ROW_INCHES = 0.3
MAX_INCHES = 9.0
INSTANT = 0.015  # a task shorter than this share of the run's span (a few pixels) is drawn as a mark, not a bar


def _status(row: Any) -> str:
    status = known(row.status)
    kind = getattr(row, "error_type", None)  # history() moves it out of the result into its own column
    if kind is None and isinstance(getattr(row, "result", None), dict):
        kind = row.result.get("error_type")
    if status in ("failed", "cancelled") and kind in (DEPENDENCY_FAILED, DEPENDENCY_CANCELLED):
        return SKIPPED
    return status


def _present(value: Any) -> bool:
    return value is not None and value == value  # NaT is not equal to itself


def _spans(frame: Any, now: datetime) -> tuple[list[tuple[int, float, float | None, str]], float]:
    """(row index, start s, duration s, shown status) per task that ran, and (…, None, …) at the time a
    task that never ran (skipped, cancelled while waiting) was settled; and the run's span in seconds."""
    starts = frame["started_at"]
    origin = starts.min() if starts.notna().any() else frame["created_at"].min()
    spans: list[tuple[int, float, float | None, str]] = []
    for i, row in enumerate(frame.itertuples(index=False)):
        if not _present(row.started_at):
            if _present(row.completed_at):
                spans.append((i, (row.completed_at - origin).total_seconds(), None, _status(row)))
            continue
        end = row.completed_at if _present(row.completed_at) else (now if row.status == "in_progress" else row.started_at)
        begin = (row.started_at - origin).total_seconds()
        spans.append((i, begin, max(0.0, (end - row.started_at).total_seconds()), _status(row)))
    span = max((b + (d or 0.0) for _, b, d, _ in spans), default=0.0)
    return spans, span


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _label(key: Any, task_id: Any, name: Any) -> str:
    """A row's label: the key the user wrote; the name for a task stored without one (its id a uuid)."""
    if key == task_id and isinstance(task_id, str) and _UUID.match(task_id) and name:
        return str(name)
    return str(key)


def _grouped(frame: Any) -> tuple[list[str], list[int]]:
    """Labels (one per executor, in tree order of first use) and each task's row index."""
    order: dict[str, int] = {}
    counts: dict[str, int] = {}
    rows = []
    for executor in frame["executor"]:
        rows.append(order.setdefault(executor, len(order)))
        counts[executor] = counts.get(executor, 0) + 1
    return [f"{e} ({counts[e]} tasks)" for e in order], rows


def timeline(root_id: str, store: Any = None, ax: Any = None, *, max_tasks: int = 40) -> Any:
    """Draw the run under ``root_id`` as a Gantt chart and return the matplotlib Figure.

    One row per task, labelled with its key (indented by depth), a bar from start to end coloured
    by status (a task still running reaches to now; one that never started has none; one that took
    no time is a diamond), x in seconds since the run's first start. More than ``max_tasks`` tasks:
    one row per executor instead. Pass ``ax`` to draw into your own Axes. In a notebook the
    returned Figure shows inline as the cell's value (it is not left open in pyplot, so it shows once).
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(INSTALL) from exc
    from apflow_nb.analysis.history import history

    frame = history(store, root_id=root_id, flatten=False)
    if frame.empty:
        raise LookupError(f"no task with root id {root_id!r} in the store")
    grouped = len(frame) > max_tasks
    if grouped:
        labels, row_of = _grouped(frame)
    else:
        labels = ["  " * int(d) + _label(k, t, n) for d, k, t, n in
                  zip(frame["depth"], frame["key"], frame["task_id"], frame["name"])]
        row_of = list(range(len(frame)))
    fig, ax = _axes(ax, len(labels))
    spans, span = _spans(frame, datetime.now(timezone.utc))
    seen: set[str] = set()
    for i, begin, duration, status in spans:
        color, label = hex_color(status), status if status not in seen else None
        seen.add(status)
        y = row_of[i]
        if duration is None:  # never ran: a cross where it was settled
            ax.scatter([begin], [y], marker="X", s=34, color=color, zorder=3, label=label, edgecolors="none")
        elif duration <= max(span, 1e-9) * INSTANT:
            ax.scatter([begin], [y], marker="D", s=28, color=color, zorder=3, label=label, edgecolors="none")
        else:
            ax.barh(y, duration, left=begin, height=0.6, color=color, label=label, alpha=0.55 if grouped else 1.0)
    ax.set_yticks(range(len(labels)), labels=labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # the root on top
    ax.set_xlabel("seconds since the run started")
    root_key = frame["key"].iloc[0] if "key" in frame else root_id
    ax.set_title(f"run {root_key}" + (f" ({len(frame)} tasks, one row per executor)" if grouped else ""))
    if seen:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize="small", frameon=False)
    return fig


def _axes(ax: Any, rows: int) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt  # pyplot sets up Jupyter's inline display of figures

    height = min(MAX_INCHES, max(2.0, ROW_INCHES * rows + 1.2))
    fig, ax = plt.subplots(figsize=(10, height), layout="constrained")
    plt.close(fig)  # shown once, as the returned value, not again when the cell ends
    return fig, ax
