"""``timeline()``: a Gantt chart of one run (matplotlib, an optional extra)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

STATUS_COLORS = {"completed": "#2e7d32", "failed": "#c62828", "cancelled": "#757575",
                 "in_progress": "#1565c0", "pending": "#bdbdbd"}
OTHER_COLOR = "#9e9e9e"
INSTALL = "timeline() draws with matplotlib, which is not installed: pip install 'apflow_nb[history]'"


def timeline(root_id: str, store: Any = None, ax: Any = None, *, max_tasks: int = 200) -> Any:
    """Draw the run under ``root_id`` as a Gantt chart and return the matplotlib Figure.

    One row per task in tree order (labels indented by depth), a bar from start to end coloured by
    status (a task still running reaches to now; one that never started has no bar), x in seconds
    since the run's first start. Pass ``ax`` to draw into your own Axes. In a notebook the returned
    Figure shows inline as the cell's value (it is not left open in pyplot, so it shows once).
    At most ``max_tasks`` rows are drawn (the first ones in tree order).
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(INSTALL) from exc
    from apflow_nb.analysis.history import history

    frame = history(store, root_id=root_id, flatten=False)
    if frame.empty:
        raise LookupError(f"no task with root id {root_id!r} in the store")
    frame = frame.head(max_tasks)
    created = ax is None
    if created:
        import matplotlib.pyplot as plt  # pyplot sets up Jupyter's inline display of figures

        fig, ax = plt.subplots(figsize=(9, max(2.0, 0.3 * len(frame) + 1.2)), layout="constrained")
        plt.close(fig)  # shown once, as the returned value, not again when the cell ends
    else:
        fig = ax.figure
    starts = frame["started_at"]
    origin = starts.min() if starts.notna().any() else frame["created_at"].min()
    now = datetime.now(timezone.utc)
    seen: set[str] = set()
    for i, row in enumerate(frame.itertuples(index=False)):
        if row.started_at is None or row.started_at != row.started_at:  # never started (NaT)
            continue
        if row.completed_at == row.completed_at and row.completed_at is not None:
            end = row.completed_at
        else:
            end = now if row.status == "in_progress" else row.started_at
        begin = (row.started_at - origin).total_seconds()
        width = max((end - row.started_at).total_seconds(), 1e-3)
        label = row.status if row.status not in seen else None  # one legend entry per status
        seen.add(row.status)
        ax.barh(i, width, left=begin, height=0.6, color=STATUS_COLORS.get(row.status, OTHER_COLOR),
                label=label)
    labels = ["  " * int(d) + str(n) for d, n in zip(frame["depth"], frame["name"])]
    ax.set_yticks(range(len(frame)), labels=labels)
    ax.set_ylim(len(frame) - 0.5, -0.5)  # the root on top
    ax.set_xlabel("seconds since the run started")
    ax.set_title(f"run {root_id}")
    if seen:
        ax.legend(loc="lower right", fontsize="small")
    return fig
