"""What ran, as pandas DataFrames: ``history()``, ``events()``, ``compare()`` and a ``timeline()`` plot.

Like MLflow's ``search_runs``: one call, one frame, prefixed columns (``inputs.<key>``,
``result.<key>``). Filters run in SQL, including ``where=`` expressions on inputs and results. pandas
(and matplotlib, for the timeline) load on first call, so importing this package costs little.

Modules: ``stores`` (what ``store=`` may be), ``checks`` (argument checks), ``refs``/``where`` (the filter
language), ``filtersql``/``jsonsql`` (its SQL), ``plan`` and ``query`` (the SELECTs), ``rows``/``assemble``
(values -> columns), ``tree`` (depth, roots, tree order), ``flatten`` (JSON -> columns), ``catalog`` (stable
columns), ``frame`` (typed DataFrames), ``columns`` (their names), ``indexes`` (``index()``, ``explain()``),
``comparison`` (``compare()``), ``duckdb_compat`` (the original project's DuckDB stores, read-only), ``timeline``.
"""
from typing import Any

from apflow_nb.analysis.catalog import rebuild_key_catalog
from apflow_nb.analysis.columns import EVENT_COLUMNS, HISTORY_COLUMNS
from apflow_nb.analysis.errors import FilterError, HistoryQueryError, WhereError
from apflow_nb.analysis.events import events
from apflow_nb.analysis.history import history
from apflow_nb.analysis.indexes import explain, index
from apflow_nb.analysis.timeline import timeline

__all__ = ["EVENT_COLUMNS", "HISTORY_COLUMNS", "Comparison", "FilterError", "HistoryQueryError", "WhereError",
           "compare", "events", "explain", "history", "index", "rebuild_key_catalog", "timeline"]


def __getattr__(name: str) -> Any:
    if name in ("compare", "Comparison"):  # imports pandas: only when used
        import importlib

        return getattr(importlib.import_module("apflow_nb.analysis.comparison"), name)
    raise AttributeError(f"module 'apflow_nb.analysis' has no attribute {name!r}")
