"""The result cache: one table in the store, so every kernel and machine sharing the store shares it.

A key is the executor id, a fingerprint of the executor's code (the class or function source, the
``%%executor`` cell's source, or its bytecode when no source is available; plus ``cache_version``)
and the canonical JSON of the inputs the executor would get (after dependency merge, pre-hooks and
validation), hashed. Only completed results are stored; failed and cancelled ones never are. An
entry may expire (``cache_ttl``). ``clear_cache`` removes entries.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import Engine, Text, and_, cast, delete, or_, select

from apflow_nb.core.storage.cache_keys import SOURCE_ATTRIBUTE, cache_key, code_of, fingerprint  # noqa: F401
from apflow_nb.core.storage.json_text import Encoded
from apflow_nb.core.storage.sqlalchemy.models import cache_table, utcnow


def load_index(engine: Engine, executor_ids: Iterable[str]) -> dict[str, tuple[Any, str | None]]:
    """Every live entry of these executors: ``key -> (result, task id)`` (one query). Results stay JSON text
    (``Encoded``; None for none): a hit decodes its own, and its text is written back as it is."""
    ids = sorted(set(executor_ids))
    if not ids:
        return {}
    now = utcnow()
    c = cache_table.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.key, cast(c.result, Text), c.task_id)
                            .where(and_(c.executor_id.in_(ids), or_(c.expires_at.is_(None), c.expires_at > now))))
        return {key: (None if text is None else Encoded(text), task_id) for key, text, task_id in rows}


def entry_row(key: str, executor_id: str, code: str, result: Any, task_id: str, ttl: float | None) -> dict[str, Any]:
    """The row that stores one result (written by the state writer, replacing an older one)."""
    now = utcnow()
    return {"key": key, "executor_id": executor_id, "fingerprint": code[:64], "result": result,
            "task_id": task_id, "created_at": now, "expires_at": now + timedelta(seconds=ttl) if ttl else None}


def clear_cache(executor: str | None = None, older_than: datetime | timedelta | None = None, *,
                store: Any = None) -> int:
    """Remove cached results (of one executor; older than a timedelta, or created before a datetime) from
    ``store`` (a URL, Session, Engine or TaskManager; default: the default store); returns how many."""
    return clear(_engine_of(store), executor, older_than)


def _engine_of(store: Any) -> Engine:
    from apflow_nb.core.storage.session import create_session, get_engine

    if store is None or isinstance(store, str):
        engine = get_engine(store)
        create_session(store).close()  # the tables exist
        return engine
    if isinstance(store, Engine):
        return store
    db = getattr(store, "db", store)  # a TaskManager, or a Session
    return db.get_bind()


def clear(engine: Engine, executor: str | None = None, older_than: datetime | timedelta | None = None) -> int:
    """Remove entries (of one executor; created before a time, or longer ago than a timedelta); return how many."""
    c = cache_table.c
    where = []
    if executor is not None:
        where.append(c.executor_id == executor)
    if older_than is not None:
        cutoff = utcnow() - older_than if isinstance(older_than, timedelta) else older_than
        where.append(c.created_at < cutoff)
    with engine.begin() as conn:
        return conn.execute(delete(cache_table).where(and_(*where)) if where else delete(cache_table)).rowcount


def stats(engine: Engine) -> list[tuple[str, int]]:
    """``(executor id, entries)`` pairs, for ``%apflow cache``."""
    from sqlalchemy import func

    c = cache_table.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(c.executor_id, func.count()).group_by(c.executor_id)
                                               .order_by(c.executor_id))]
