"""``timeline()``: a Gantt chart of one run (matplotlib, an optional extra)."""
from __future__ import annotations

from typing import Any

STATUS_COLORS = {"completed": "#2e7d32", "failed": "#c62828", "cancelled": "#757575",
                 "in_progress": "#1565c0", "pending": "#bdbdbd"}


def timeline(root_id: str, store: Any = None, *, ax: Any = None, max_tasks: int = 200) -> Any:
    """Draw the run under ``root_id`` as horizontal bars from start to end, coloured by status, one
    row per task in tree order (indented by depth). Returns the matplotlib Figure, which a notebook
    shows inline."""
    try:
        import matplotlib

        if ax is None:
            import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("timeline() needs matplotlib: pip install 'apflow_nb[history]'") from exc
    from apflow_nb.analysis.history import history

    frame = history(store, root_id=root_id, flatten=False)
    if frame.empty:
        raise LookupError(f"no task with root id {root_id!r} in the store")
    frame = frame.head(max_tasks)
    started = frame["started_at"]
    origin = started.min() if started.notna().any() else frame["created_at"].min()
    created = ax is None
    if created:
        fig, ax = plt.subplots(figsize=(9, max(2.0, 0.28 * len(frame) + 1)))
    else:
        fig = ax.figure
    labels = []
    for i, row in enumerate(frame.itertuples(index=False)):
        labels.append("  " * int(row.depth) + str(row.name))
        if row.started_at is None or str(row.started_at) == "NaT":
            continue
        begin = (row.started_at - origin).total_seconds()
        end_time = row.completed_at if str(row.completed_at) != "NaT" else row.started_at
        width = max((end_time - row.started_at).total_seconds(), 1e-3)
        ax.barh(i, width, left=begin, color=STATUS_COLORS.get(row.status, "#9e9e9e"), edgecolor="none",
                label=row.status)
    ax.set_yticks(range(len(frame)), labels=labels)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the run started")
    ax.set_title(f"run {root_id}")
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), loc="lower right", fontsize="small")
    fig.tight_layout()
    if created:  # the returned Figure is shown once (as the cell's value), not again by pyplot
        plt.close(fig)
    return fig
