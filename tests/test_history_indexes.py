"""apflow_nb.index(): the expression indexes where= filters use, with the query plan to show it."""
from __future__ import annotations

import pytest
import apflow_nb
from apflow_nb.analysis import explain
from apflow_nb.analysis.errors import HistoryQueryError, WhereError
from apflow_nb.core.storage.session import get_engine
from tests.test_history_where import ROWS, fill, fill_duckdb


def test_sqlite_plans_use_the_expression_index(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    fill(url)
    where = "inputs.model == 'm3'"
    assert "SCAN apflow_tasks" in explain(url, where=where)
    before = sorted(apflow_nb.history(url, where=where)["task_id"])
    [name] = apflow_nb.index(url, "inputs.model")
    assert apflow_nb.index(url, "inputs.model") == [name]  # idempotent
    assert f"SEARCH apflow_tasks USING INDEX {name}" in explain(url, where=where)
    assert sorted(apflow_nb.history(url, where=where)["task_id"]) == before == ["t1"]
    # numbers, ranges and in-lists use the same index; so does the executor= filter once indexed
    assert f"USING INDEX {name}" in explain(url, where="inputs.model in ['m1', 3]")
    [epochs] = apflow_nb.index(url, "inputs.epochs")
    assert f"USING INDEX {epochs}" in explain(url, where="inputs.epochs > 2")
    assert sorted(apflow_nb.history(url, where="inputs.epochs > 2")["task_id"]) == ["t1", "t2", "t4"]
    [executor] = apflow_nb.index(url, "executor")
    assert f"USING INDEX {executor}" in explain(url, executor="train")
    assert f"USING INDEX {executor}" in explain(url, where="executor == 'train'")
    [odd] = apflow_nb.index(url, "inputs[\"a.b\"]")
    assert f"USING INDEX {odd}" in explain(url, where="inputs[\"a.b\"] == 'dotted'")
    with get_engine(url).connect() as conn:  # (SQLAlchemy's inspector skips expression indexes)
        names = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'").scalars())
    assert {name, epochs, executor, odd} <= names


def test_postgresql_indexes_text_and_numbers(pg_url):
    fill(pg_url)
    text_index, number_index = apflow_nb.index(pg_url, "inputs.model")
    plan = explain(pg_url, where="inputs.model == 'm3'", prefer_indexes=True)
    assert text_index in plan, plan
    plan = explain(pg_url, where="inputs.model > 2", prefer_indexes=True)
    assert number_index in plan, plan
    assert sorted(apflow_nb.history(pg_url, where="inputs.model == 3")["task_id"]) == ["t4"]
    assert len(apflow_nb.history(pg_url)) == len(ROWS)


def test_index_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    fill(url)
    with pytest.raises(WhereError, match="unknown column 'bogus'"):
        apflow_nb.index(url, "bogus")
    with pytest.raises(WhereError, match="key inside the JSON column"):
        apflow_nb.index(url, "inputs")
    path = tmp_path / "their.duckdb"
    fill_duckdb(path)
    with pytest.raises(HistoryQueryError, match="read-only"):
        apflow_nb.index(f"duckdb:///{path}", "inputs.model")
    with pytest.raises(HistoryQueryError, match="no store"):
        apflow_nb.index(f"sqlite:///{tmp_path / 'missing.db'}", "inputs.model")
