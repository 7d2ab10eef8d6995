"""Shared fixtures: a clean registry per test and real SQLite stores (files in tmp_path)."""
from __future__ import annotations

import os

import pytest

from apflow_nb.core.extensions.registry import get_registry
from apflow_nb.core.storage.session import create_session, dispose_engines
from apflow_nb.core.storage.sqlalchemy.models import set_task_model_class


@pytest.fixture(autouse=True)
def _clean_registry():
    """Each test starts with only the built-in executors and no hooks, storages or tools."""
    get_registry().clear()
    set_task_model_class(None)
    yield
    get_registry().clear()
    set_task_model_class(None)


@pytest.fixture
def db_url(tmp_path):
    """A fresh SQLite file for one test."""
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    yield url
    dispose_engines()


@pytest.fixture
def db(db_url):
    session = create_session(db_url)
    yield session
    session.close()


@pytest.fixture
def manager(db):
    from apflow_nb import TaskManager

    return TaskManager(db, cancel_grace_period=1.0)


@pytest.fixture
def in_tmp_cwd(tmp_path, monkeypatch):
    """Run the test with the working directory in tmp_path and no store URL in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("APFLOW_NB_DATABASE_URL", raising=False)
    yield tmp_path
    dispose_engines()


def pytest_configure(config):
    os.environ.setdefault("APFLOW_NB_NO_DISPLAY", "1")
