"""Runs in the store: who is running a tree now (a lease with a heartbeat), and cancel requests.

A process that runs a tree holds a lease on its root id in ``apflow_runs``: its identity
(``host:pid:start``) and a heartbeat it renews every few seconds. Another process that wants to run
the same tree gets TreeAlreadyRunningError naming the owner, and may take the lease over only once
the owner is gone: dead on this host (zombies count as dead), or silent for longer than the lease's
time to live. Cancel requests (``apflow_cancel_requests``) let any process ask the owner to cancel a
task or the whole tree; the owner polls them with its heartbeat.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from apflow_nb.core.errors import TreeAlreadyRunningError
from apflow_nb.core.storage.processes import owner_alive
from apflow_nb.core.storage.sqlalchemy.models import cancel_requests, runs, utcnow

LEASE_TTL = 30.0  # seconds without a heartbeat after which another host may take a run over
HEARTBEAT = 2.0   # seconds between heartbeats


def describe_owner(owner: str) -> str:
    """``process 1234 on host-a`` from ``host-a:1234:start``."""
    parts = owner.rsplit(":", 2)
    return f"process {parts[1]} on {parts[0]}" if len(parts) == 3 else f"owner {owner!r}"


def owner_gone(owner: str, heartbeat_at: datetime | None, ttl: float = LEASE_TTL) -> bool:
    """True when the lease's owner cannot be running the tree any more."""
    alive = owner_alive(owner)
    if alive is not None:  # on this host: the process table decides
        return not alive
    return heartbeat_at is None or utcnow() - heartbeat_at > timedelta(seconds=ttl)


def acquire(engine: Engine, root_id: str, owner: str, ttl: float = LEASE_TTL) -> None:
    """Take the lease on ``root_id`` for ``owner``, or raise TreeAlreadyRunningError naming who holds it."""
    for _ in range(5):
        now = utcnow()
        try:
            with engine.begin() as conn:
                conn.execute(insert(runs).values(root_id=root_id, owner=owner, started_at=now, heartbeat_at=now))
            return
        except IntegrityError:
            pass
        with engine.begin() as conn:
            row = conn.execute(select(runs.c.owner, runs.c.heartbeat_at, runs.c.finished_at, runs.c.started_at)
                               .where(runs.c.root_id == root_id)).first()
            if row is None:
                continue  # released meanwhile: insert again
            if row.finished_at is None and row.owner != owner and not owner_gone(row.owner, row.heartbeat_at, ttl):
                raise TreeAlreadyRunningError(
                    f"the tree {root_id!r} is already running in {describe_owner(row.owner)} (since "
                    f"{row.started_at:%Y-%m-%d %H:%M:%S} UTC). Cancel it there (apflow_nb.cancel({root_id!r})) or "
                    f"wait for it; it can be taken over once that process is gone.")
            taken = conn.execute(update(runs).where(and_(runs.c.root_id == root_id, runs.c.owner == row.owner,
                                                         runs.c.heartbeat_at == row.heartbeat_at))
                                 .values(owner=owner, started_at=now, heartbeat_at=now, finished_at=None,
                                         status=None))
            if taken.rowcount == 1:
                return
    raise TreeAlreadyRunningError(f"could not take the lease on tree {root_id!r}: other processes keep taking it")


def renew(engine: Engine, root_ids: list[str], owner: str) -> list[str]:
    """Renew the heartbeat of these runs; returns the root ids whose lease another process took."""
    if not root_ids:
        return []
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(update(runs).where(and_(runs.c.root_id.in_(root_ids), runs.c.owner == owner))
                     .values(heartbeat_at=now))
        held = set(conn.execute(select(runs.c.root_id).where(and_(runs.c.root_id.in_(root_ids),
                                                                  runs.c.owner == owner,
                                                                  runs.c.finished_at.is_(None)))).scalars())
    return [r for r in root_ids if r not in held]


def release(engine: Engine, root_id: str, owner: str, status: str) -> None:
    """The run ended: keep its row as a record (finished_at, status)."""
    with engine.begin() as conn:
        conn.execute(update(runs).where(and_(runs.c.root_id == root_id, runs.c.owner == owner))
                     .values(finished_at=utcnow(), status=status))


def request_cancel(engine: Engine, root_id: str, task_id: str | None, reason: str) -> None:
    """Ask the process that runs ``root_id`` to cancel ``task_id`` (None: the whole tree)."""
    with engine.begin() as conn:
        conn.execute(insert(cancel_requests).values(root_id=root_id, task_id=task_id, reason=reason,
                                                    requested_by=f"pid {os.getpid()}", requested_at=utcnow()))


def take_cancel_requests(engine: Engine, root_ids: list[str]) -> list[Any]:
    """Unhandled cancel requests for these runs, marked handled in the same transaction."""
    if not root_ids:
        return []
    with engine.begin() as conn:
        rows = conn.execute(select(cancel_requests.c.id, cancel_requests.c.root_id, cancel_requests.c.task_id,
                                   cancel_requests.c.reason)
                            .where(and_(cancel_requests.c.root_id.in_(root_ids),
                                        cancel_requests.c.handled_at.is_(None)))).all()
        if rows:
            conn.execute(update(cancel_requests).where(cancel_requests.c.id.in_([r.id for r in rows]))
                         .values(handled_at=utcnow()))
    return list(rows)


def running_owner(engine: Engine, root_id: str) -> tuple[str, bool] | None:
    """``(owner, gone)`` of an unfinished run of ``root_id``, or None when no run holds it."""
    with engine.connect() as conn:
        row = conn.execute(select(runs.c.owner, runs.c.heartbeat_at)
                           .where(and_(runs.c.root_id == root_id, runs.c.finished_at.is_(None)))).first()
    if row is None:
        return None
    return row.owner, owner_gone(row.owner, row.heartbeat_at)


def lease_of(engine: Engine, root_id: str) -> Any:
    """The lease row of ``root_id`` (owner, started_at, heartbeat_at, finished_at, status), or None."""
    with engine.connect() as conn:
        return conn.execute(select(runs.c.owner, runs.c.started_at, runs.c.heartbeat_at, runs.c.finished_at,
                                   runs.c.status).where(runs.c.root_id == root_id)).first()


def newest_running(engine: Engine) -> str | None:
    """The root id of the most recently started run whose owner is still there, or None."""
    with engine.connect() as conn:
        rows = conn.execute(select(runs.c.root_id, runs.c.owner, runs.c.heartbeat_at)
                            .where(runs.c.finished_at.is_(None)).order_by(runs.c.started_at.desc())).all()
    return next((r.root_id for r in rows if not owner_gone(r.owner, r.heartbeat_at)), None)
