"""What ran, as pandas DataFrames: ``history()``, ``events()`` and a ``timeline()`` plot.

Like MLflow's ``search_runs``: one call, one frame, prefixed columns (``inputs.<key>``,
``result.<key>``). Filters run in SQL. pandas (and matplotlib, for the timeline) load on first
call, so importing this package costs little.

Modules: ``stores`` (what ``store=`` may be), ``query`` (the SQL), ``tree`` (depth, roots, tree
order), ``flatten`` (JSON -> columns), ``frame`` (typed DataFrames), ``columns`` (their names),
``duckdb_compat`` (the original project's DuckDB stores, read-only), ``timeline`` (the Gantt chart).
"""
from apflow_nb.analysis.columns import EVENT_COLUMNS, HISTORY_COLUMNS
from apflow_nb.analysis.events import events
from apflow_nb.analysis.history import history
from apflow_nb.analysis.timeline import timeline

__all__ = ["EVENT_COLUMNS", "HISTORY_COLUMNS", "events", "history", "timeline"]
