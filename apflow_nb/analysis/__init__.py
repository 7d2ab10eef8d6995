"""What ran, as pandas DataFrames: ``history()``, ``events()`` and a ``timeline()`` plot.

Like MLflow's ``search_runs``: one call, one frame, prefixed columns (``inputs.<key>``,
``result.<key>``). Filters run in SQL. pandas (and matplotlib for the timeline) load on first use.
"""
from apflow_nb.analysis.events import events
from apflow_nb.analysis.history import HISTORY_COLUMNS, history
from apflow_nb.analysis.timeline import timeline

__all__ = ["HISTORY_COLUMNS", "events", "history", "timeline"]
