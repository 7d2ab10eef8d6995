"""The where= language on real stores (a SQLite file, the live PostgreSQL, an original-layout DuckDB file):
every operator, typed comparisons, nested and odd keys, injection attempts that stay literals, errors
with positions, order_by / limit / offset, and columns= reading only what it names."""
from __future__ import annotations

import datetime as dt
import json
import operator

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import event, insert, inspect

import apflow_nb
from apflow_nb import create_session
from apflow_nb.analysis.errors import WhereError
from apflow_nb.analysis.stores import dispose_stores
from apflow_nb.core.errors import ApflowError
from apflow_nb.core.storage.session import get_engine
from apflow_nb.core.storage.sqlalchemy.models import TaskModel
from tests.test_store_duckdb_and_writers import ORIGINAL_DDL

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
TB = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad"
# id, inputs, result, status, error, priority (task i started at T0 and ran i seconds)
ROWS = [
    ("t1", {"model": "m3", "lr": 0.1, "epochs": 3, "flag": True, "opts": {"depth": 2}, "a.b": "dotted",
            "tags": ["x", "y"]}, {"score": 0.95, "ok": True}, "completed", None, 1),
    ("t2", {"model": "m1", "lr": 0.5, "epochs": 10, "flag": False, "opts": {"depth": 5}},
     {"score": 0.5, "ok": False}, "completed", None, 2),
    ("t3", {"model": "3", "lr": "0.1", "epochs": "3", "opts": "flat"}, {"score": None}, "completed", None, 3),
    ("t4", {"model": 3, "epochs": 3.0, "flag": 1},
     {"status": "failed", "error": "ValueError: bad", "error_type": "ValueError", "traceback": TB}, "failed",
     "ValueError: bad\n\n" + TB, 0),
    ("t5", None, [1, 2], "completed", None, 2),
    ("t6", {"model": "x' OR 1=1 --", "q'uote": 1, "sp ace": {"x": -1}}, {"score": 1}, "completed", None, 2),
    ("t7", {"model": "m2", "lr": 0.9}, {"status": "cancelled", "message": "stopped by the user"}, "cancelled",
     None, 2),
]
IDS = [r[0] for r in ROWS]


def fill(url: str) -> None:
    db = create_session(url)
    rows = [dict(id=i, key=i, root_id=i, name="train", inputs=inputs, result=result, status=status, error=error,
                 priority=prio, progress=1.0, has_children=False, has_copy=False, updated_at=T0,
                 created_at=T0 + dt.timedelta(seconds=k), started_at=T0, completed_at=T0 + dt.timedelta(seconds=k))
            for k, (i, inputs, result, status, error, prio) in enumerate(ROWS)]
    with db.get_bind().begin() as conn:
        conn.execute(insert(TaskModel.__table__), rows)
    db.close()


def fill_duckdb(path) -> None:
    """The same rows in an original aipartnerupflow DuckDB store (no key or root_id columns)."""
    con = duckdb.connect(str(path))
    con.execute(ORIGINAL_DDL)
    for k, (i, inputs, result, status, error, prio) in enumerate(ROWS):
        con.execute("INSERT INTO apflow_tasks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [i, None, "u", "train", status, prio, "[]", json.dumps(inputs), None, json.dumps(result), error,
                     None, 1.0, T0 + dt.timedelta(seconds=k), T0, T0, T0 + dt.timedelta(seconds=k), False, None,
                     False])
    con.close()


@pytest.fixture(params=["sqlite", "postgresql", "duckdb"])
def where_url(request, tmp_path):
    """The rows above in each kind of store."""
    if request.param == "duckdb":
        path = tmp_path / "their.duckdb"
        fill_duckdb(path)
        yield f"duckdb:///{path}"
        dispose_stores()
        return
    url = f"sqlite:///{tmp_path / 'tasks.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    fill(url)
    yield url


def ids(url, where, **kw):
    return sorted(apflow_nb.history(url, where=where, **kw)["task_id"])


CASES = [
    ("inputs.model == 'm3'", ["t1"]),
    ("inputs.model == 3", ["t4"]),  # a number matches numbers only
    ("inputs.model == '3'", ["t3"]),  # a string matches strings only
    ("inputs.epochs == 3", ["t1", "t4"]),  # 3 == 3.0
    ("inputs.epochs != 3", ["t2", "t3", "t5", "t6", "t7"]),  # != includes missing values
    ("inputs.epochs > 2", ["t1", "t2", "t4"]),
    ("inputs.epochs >= 10", ["t2"]),
    ("inputs.lr < 0.2", ["t1"]),
    ("inputs.lr <= 0.5", ["t1", "t2"]),
    ("inputs.lr == 0.1", ["t1"]),  # a float literal compares as a double everywhere (DuckDB: not FLOAT)
    ("inputs.lr in [0.1, 0.5]", ["t1", "t2"]),
    ("inputs.model > 'm2'", ["t1", "t6"]),  # strings order among strings only
    ("inputs.flag == True", ["t1"]),  # not the 1 of t4
    ("inputs.flag == 1", ["t4"]),  # not the true of t1
    ("inputs.flag == False", ["t2"]),
    ("inputs.flag != True", ["t2", "t3", "t4", "t5", "t6", "t7"]),
    ("inputs.model in ['m1', 3]", ["t2", "t4"]),
    ("inputs.model not in ['m1', 3]", ["t1", "t3", "t5", "t6", "t7"]),
    ("inputs.model in ['m9', None]", ["t5"]),
    ("result.score is None", ["t3", "t4", "t5", "t7"]),  # null, and missing
    ("result.score == None", ["t3", "t4", "t5", "t7"]),
    ("result.score is not None", ["t1", "t2", "t6"]),
    ("inputs.opts.depth >= 2 and inputs.opts.depth < 5", ["t1"]),
    ("inputs.opts == 'flat'", ["t3"]),
    ("inputs['a.b'] == 'dotted'", ["t1"]),
    ("inputs[\"sp ace\"].x == -1", ["t6"]),
    ("inputs.tags[1] == 'y'", ["t1"]),
    ("inputs.tags[5] is None", IDS),
    ("not (inputs.model == 'm3' or result.ok == True)", ["t2", "t3", "t4", "t5", "t6", "t7"]),
    ("(inputs.lr < 0.2 or inputs.lr > 0.8) and status == 'completed'", ["t1"]),
    ("0.4 < result.score < 1", ["t1", "t2"]),
    ("1 > result.score", ["t2", "t1"]),
    ("error_type == 'ValueError'", ["t4"]),
    ("error == 'ValueError: bad'", ["t4"]),  # the message, without the traceback
    ("error == 'stopped by the user'", ["t7"]),
    ("traceback is not None", ["t4"]),
    ("status in ['failed', 'cancelled']", ["t4", "t7"]),
    ("status != 'completed'", ["t4", "t7"]),
    ("priority >= 2", ["t2", "t3", "t5", "t6", "t7"]),
    ("priority in [0, 1]", ["t1", "t4"]),
    ("duration_s > 2.5", ["t4", "t5", "t6", "t7"]),
    ("created_at >= '2026-01-01T00:00:03Z'", ["t4", "t5", "t6", "t7"]),
    ("created_at < '2026-01-01 00:00:01'", ["t1"]),
    ("inputs is None", ["t5"]),
    ("task_id in ['t1', 't2'] or key == 't3'", ["t1", "t2", "t3"]),
    ("executor == 'train' and user_id is None", IDS),
]


@pytest.mark.parametrize("expression,expected", CASES, ids=[c[0] for c in CASES])
def test_every_operator_typed(where_url, expression, expected):
    if where_url.startswith("duckdb") and "user_id" in expression:
        expected = []  # every original row has user u
    assert ids(where_url, expression) == sorted(expected)


def test_injection_attempts_stay_literals(where_url):
    assert ids(where_url, "inputs.model == \"x' OR 1=1 --\"") == ["t6"]
    assert ids(where_url, "inputs[\"q'uote\"] == 1") == ["t6"]
    assert ids(where_url, "inputs[\"x') OR 1=1 --\"] == 1") == []
    assert ids(where_url, "inputs[\"a'; DROP TABLE apflow_tasks; --\"] is None") == IDS
    assert ids(where_url, "inputs.__class__.__bases__ == 1") == []  # keys, never Python attributes
    assert ids(where_url, "status == \"completed' OR '1'='1\"") == []
    assert len(apflow_nb.history(where_url)) == len(ROWS)  # nothing was dropped
    for expression, what in [("__import__('os').system('touch /tmp/pwned') == 0", "function call"),
                             ("(lambda: 1)() == 1", "function call"), ("lambda: 1", "lambda"),
                             ("inputs[status] == 1", "key in \\[...\\]"), ("inputs[1 + 1] == 1", "key in \\[...\\]"),
                             ("().__class__ == 1", "not a column"), ("inputs.model == inputs.lr", "two columns"),
                             ("[x for x in ()] == 1", "comprehension"), ("inputs.x == f'{1}'", "f-string"),
                             ("inputs.x == {'a': 1}", "dict"), ("inputs.x == b'1'", "bytes")]:
        with pytest.raises(WhereError, match=what):
            apflow_nb.history(where_url, where=expression)


@pytest.mark.parametrize("expression,message,position", [
    ("inputz.model == 'm3'", "unknown column 'inputz'", 0),
    ("inputs.model == 'm3' and bogus > 1", "unknown column 'bogus'", 25),
    ("inputs.x ~= 3", "invalid syntax", 9),
    ("inputs.x === 3", "invalid syntax", 11),
    ("inputs.a == 1 & inputs.b == 2", "use 'and' instead of '&'", 12),
    ("inputs.x + 1 > 2", "arithmetic", 0),
    ("inputs.x is 3", "compares with None only", 12),
    ("inputs.x > None", "None cannot be ordered", 11),
    ("inputs.flag > True", "only be compared with == or !=", 0),
    ("status == 3", "'status' holds text", 0),
    ("priority == 'high'", "'priority' holds numbers", 0),
    ("created_at > 'yesterday'", "not an ISO 8601 time", 0),
    ("depth == 1", "depth is computed after reading", 0),
    ("status.x == 1", "not a JSON column", 0),
    ("inputs.x in 'abc'", "in needs a list", 12),
    ("inputs.class == 1", "inputs\\[\"class\"\\]", 7),
    ("inputs.x == 2**70", "arithmetic", 12),
    ("inputs.x == 12345678901234567890", "64-bit", 0),
    ("inputs.x == 1e999", "finite", 0),
    ("inputs.x == 'a\\x00b'", "NUL", 0),
    ("inputs.x", "alone is not a condition", 0),
    ("", "empty", None),
])
def test_errors_name_what_and_where(where_url, expression, message, position):
    with pytest.raises(WhereError, match=message) as info:
        apflow_nb.history(where_url, where=expression)
    error = info.value
    assert isinstance(error, ApflowError) and isinstance(error, ValueError)
    assert error.position == position and error.expression == expression
    if position is not None:
        assert str(error).splitlines()[-1] == "    " + " " * position + "^"


def test_a_where_over_several_lines_points_at_the_right_line(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    fill(url)
    assert ids(url, "inputs.model == 'm3'\n    or inputs.model == 'm1'") == ["t1", "t2"]
    with pytest.raises(WhereError, match="line 2, column 8") as info:
        apflow_nb.history(url, where="inputs.model == 'm3'\n    or foo(1) == 2")
    assert str(info.value).splitlines()[-2:] == ["        or foo(1) == 2", "           ^"]


def test_order_by_limit_and_offset(where_url):
    h = apflow_nb.history
    by_score = h(where_url, order_by="result.score desc", columns=["task_id", "result.score"])
    assert list(by_score["task_id"][:3]) == ["t6", "t1", "t2"]  # missing scores last, newest first among them
    assert list(by_score["task_id"][3:]) == ["t7", "t5", "t4", "t3"]
    ascending = h(where_url, order_by=["result.score"], columns=["task_id"])
    assert list(ascending["task_id"][:3]) == ["t2", "t1", "t6"]
    # numbers before strings, each in its own order; then missing values
    models = h(where_url, order_by="inputs.model", columns=["task_id", "inputs.model"])
    assert list(models["task_id"]) == ["t4", "t3", "t2", "t7", "t1", "t6", "t5"]
    pages = [h(where_url, order_by=["priority desc", "task_id"], limit=3, offset=o)["task_id"].tolist()
             for o in (0, 3, 6)]
    assert pages == [["t3", "t2", "t5"], ["t6", "t7", "t1"], ["t4"]]
    assert h(where_url, limit=2, offset=1)["task_id"].tolist() == ["t6", "t5"]  # newest first
    assert h(where_url, where="priority == 2", offset=2)["task_id"].tolist() == ["t5", "t2"]
    assert h(where_url, offset=100).empty


def test_columns_reads_and_orders_only_these(where_url):
    frame = apflow_nb.history(where_url, columns=["result.score", "task_id", "inputs.opts", "error", "error_type",
                                                  "traceback", "depth", "duration_s", "inputs[\"a.b\"]"],
                              order_by="task_id")
    assert list(frame.columns) == ["result.score", "task_id", "inputs.opts", "inputs.opts.depth", "error",
                                   "error_type", "traceback", "depth", "duration_s", "inputs.a.b"]
    rows = frame.set_index("task_id")
    assert rows.loc["t2", "inputs.opts.depth"] == 5 and rows.loc["t3", "inputs.opts"] == "flat"
    assert rows.loc["t4", "error"] == "ValueError: bad" and rows.loc["t4", "traceback"] == TB
    assert rows.loc["t7", "error"] == "stopped by the user" and rows.loc["t4", "error_type"] == "ValueError"
    assert rows.loc["t6", "duration_s"] == 5.0 and rows.loc["t1", "inputs.a.b"] == "dotted"
    assert (frame["depth"] == 0).all() and str(frame["duration_s"].dtype) == "float64"
    full = apflow_nb.history(where_url).set_index("task_id")
    for column in ["result.score", "inputs.opts.depth", "error", "error_type", "traceback", "duration_s"]:
        assert rows[column].equals(full.loc[rows.index, column].rename(column)), column
    failed = apflow_nb.history(where_url, columns=["task_id", "result"], flatten=False).set_index("task_id")
    assert failed.loc["t4", "result"] is None and failed.loc["t5", "result"] == [1, 2]
    assert failed.loc["t7", "result"] is None  # the engine's cancel message is the error, not a result
    empty = apflow_nb.history(where_url, where="status == 'pending'", columns=["task_id", "inputs.model"])
    assert list(empty.columns) == ["task_id", "inputs.model"] and empty.empty


def test_columns_select_only_what_they_name(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    fill(url)
    statements = []
    engine = get_engine(url)
    listener = lambda conn, cur, statement, *args: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        apflow_nb.history(url, columns=["task_id", "inputs.model"], where="result.score > 0.5")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    query = next(s for s in statements if "FROM apflow_tasks" in s)
    selected = query.split("FROM")[0]
    assert "json_extract(apflow_tasks.inputs, '$.\"model\"')" in selected
    assert "apflow_tasks.result" not in selected and "AS inputs" not in selected  # no whole JSON column


# -- generated expressions against a reference evaluator ------------------------------------------------
MISSING = object()
JSON_REFS = {"inputs.model": ("inputs", ("model",)), "inputs.lr": ("inputs", ("lr",)),
             "inputs.epochs": ("inputs", ("epochs",)), "inputs.flag": ("inputs", ("flag",)),
             "inputs.opts.depth": ("inputs", ("opts", "depth")), "result.score": ("result", ("score",)),
             "result.ok": ("result", ("ok",)), "inputs['a.b']": ("inputs", ("a.b",))}
PLAIN = {"status": 3, "priority": 5}
LITERALS = [0, 1, 2, 3, 3.0, 0.1, 0.5, 10, -1, "m3", "m1", "3", "x", "completed", True, False, None]


def value_of(row, name):
    i, inputs, result, status, _, prio = row
    if name in PLAIN:
        return row[PLAIN[name]]
    column, path = JSON_REFS[name]
    value = inputs if column == "inputs" else result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return MISSING if value is None else value


def kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return "str" if isinstance(v, str) else "other"


def holds(v, op, lit):
    if lit is None:
        return (v is MISSING) == (op == "==")
    if op in ("==", "!="):
        equal = v is not MISSING and kind(v) == kind(lit) and v == lit
        return equal if op == "==" else not equal
    return v is not MISSING and kind(v) == kind(lit) != "bool" and \
        {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op](v, lit)


def valid(name, op, lit):
    """The combinations the language accepts (the others are WhereErrors, tested above)."""
    if op not in ("==", "!=") and (lit is None or isinstance(lit, bool)):
        return False
    if name == "status":
        return lit is None or isinstance(lit, str)
    if name == "priority":
        return lit is None or kind(lit) == "number"
    return True


comparisons = st.tuples(st.sampled_from(sorted(JSON_REFS) + sorted(PLAIN)),
                        st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), st.sampled_from(LITERALS)) \
    .filter(lambda t: valid(*t)).map(lambda t: (f"{t[0]} {t[1]} {t[2]!r}", lambda row, t=t: holds(value_of(row, t[0]),
                                                                                                    t[1], t[2])))


def combine(children):
    both = st.tuples(children, children)
    return st.one_of(
        both.map(lambda p: (f"({p[0][0]}) and ({p[1][0]})", lambda r, p=p: p[0][1](r) and p[1][1](r))),
        both.map(lambda p: (f"({p[0][0]}) or ({p[1][0]})", lambda r, p=p: p[0][1](r) or p[1][1](r))),
        children.map(lambda c: (f"not ({c[0]})", lambda r, c=c: not c[1](r))))


EXPRESSIONS = st.recursive(comparisons, combine, max_leaves=4)


def test_generated_expressions_match_a_reference_evaluator(where_url):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(EXPRESSIONS)
    def check(case):
        text, predicate = case
        expected = sorted(r[0] for r in ROWS if predicate(r))
        assert ids(where_url, text) == expected, text

    check()


def test_a_where_never_writes_and_never_creates_indexes(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    fill(url)
    path = tmp_path / "t.db"
    get_engine(url).dispose()
    before = (path.read_bytes(), sorted(i["name"] for i in inspect(get_engine(url)).get_indexes("apflow_tasks")))
    apflow_nb.history(url, where="inputs.model == 'm3'", order_by="result.score")
    get_engine(url).dispose()
    assert path.read_bytes() == before[0]
