"""Every history()/events() argument is checked before any query: a bad one is a FilterError (an ApflowError,
also a ValueError and a TypeError) naming the argument, its value and the accepted form. Before, status=5,
user_id={...} and root_id=[...] reached the database and came back as raw TypeError / ProgrammingError."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import apflow_nb
from apflow_nb import EventType, TaskStatus, create_session
from apflow_nb.analysis.errors import FilterError, HistoryQueryError
from apflow_nb.core.errors import ApflowError


@pytest.fixture
def url(store_url):
    create_session(store_url).close()
    return store_url


@pytest.mark.parametrize("kwargs,argument,form", [
    ({"status": 5}, "status", "a task status or a list of them"),
    ({"status": "done"}, "status", "'done' is not one of them"),
    ({"status": ["failed", 3]}, "status", "3 is not a string"),
    ({"status": {"a": 1}}, "status", "a task status"),
    ({"user_id": {"a": 1}}, "user_id", "a user id or a list of them"),
    ({"user_id": 7}, "user_id", "a user id"),
    ({"root_id": ["a", "b"]}, "root_id", "root_id in"),
    ({"root_id": 3}, "root_id", "a string"),
    ({"executor": 3.5}, "executor", "an executor id"),
    ({"key": [None]}, "key", "None is not a string"),
    ({"limit": -1}, "limit", "a non-negative integer"),
    ({"limit": 2.5}, "limit", "a non-negative integer"),
    ({"limit": True}, "limit", "a non-negative integer"),
    ({"offset": -2}, "offset", "a non-negative integer"),
    ({"since": "yesterday"}, "since", "ISO 8601"),
    ({"until": 1700000000}, "until", "a datetime"),
    ({"flatten": "yes"}, "flatten", "True or False"),
    ({"order_by": 5}, "order_by", "a column name"),
    ({"columns": ["task_id", 2]}, "columns", "a column name"),
    ({"where": 3}, "where", "a string"),
])
def test_history_names_the_bad_argument(url, kwargs, argument, form):
    with pytest.raises(FilterError) as info:
        apflow_nb.history(url, **kwargs)
    message = str(info.value)
    assert message.startswith(f"history({argument}=") and form in message
    assert info.value.argument == argument and info.value.value == kwargs[argument]
    assert isinstance(info.value, (ApflowError, HistoryQueryError, ValueError, TypeError))


@pytest.mark.parametrize("kwargs,argument,form", [
    ({"types": "task_done"}, "types", "'task_done' is not one of them"),
    ({"types": [EventType.TASK_FAILED, 1]}, "types", "1 is not a string"),
    ({"task_id": ["a"]}, "task_id", "a string"),
    ({"root_id": {"a": 1}}, "root_id", "a string"),
    ({"limit": -5}, "limit", "a non-negative integer"),
    ({"since": "last week"}, "since", "ISO 8601"),
])
def test_events_names_the_bad_argument(url, kwargs, argument, form):
    with pytest.raises(FilterError) as info:
        apflow_nb.events(url, **kwargs)
    assert str(info.value).startswith(f"events({argument}=") and form in str(info.value)


def test_accepted_forms_still_work(url):
    h = apflow_nb.history
    for kwargs in [{"status": TaskStatus.FAILED}, {"status": ("failed", "cancelled")}, {"status": {"completed"}},
                   {"user_id": ["ana", "bo"]}, {"since": "2026-01-31"}, {"since": "2026-01-31T12:00:00Z"},
                   {"since": dt.date(2026, 1, 31)}, {"until": pd.Timestamp("2026-01-31", tz="UTC")},
                   {"limit": 0}, {"offset": 0}, {"order_by": "created_at desc"}, {"columns": "task_id"}]:
        assert h(url, **kwargs).empty, kwargs
    assert apflow_nb.events(url, types=EventType.TASK_FAILED, since="2026-01-31T00:00:00+02:00").empty
