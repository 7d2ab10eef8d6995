"""Orphaned tasks: rows left in_progress by a process that died (a killed kernel, a crash).

Each running task records its owner, ``host:pid:start`` (the process start time tells a reused
pid apart). When a process opens a store, tasks in_progress whose owner is a dead process on
this host are marked failed with an error that says so. A live owner's tasks, and tasks owned
by other hosts (whose processes cannot be checked from here), are never touched.
"""
from __future__ import annotations

import os
import socket
from typing import Any

from sqlalchemy import Engine, select, update

HOST = socket.gethostname()


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode(errors="replace")
    except OSError:
        return None
    # the command name may hold spaces and parentheses: fields resume after the last ')'
    fields = data[data.rindex(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def process_identity(pid: int | None = None) -> str:
    """``host:pid:start`` of this process (or of ``pid``)."""
    pid = os.getpid() if pid is None else pid
    return f"{HOST}:{pid}:{_start_time(pid) or '?'}"


def owner_alive(owner: str) -> bool | None:
    """True/False for an owner on this host; None when it cannot be told (another host, bad format)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != HOST:
        return None
    try:
        pid = int(parts[1])
    except ValueError:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    recorded = parts[2]
    current = _start_time(pid)
    if recorded != "?" and current is not None and current != recorded:
        return False  # the pid was reused by another process
    return True


def recover_orphans(engine: Engine, model: Any) -> list[str]:
    """Mark in_progress tasks of dead local processes failed; return their ids."""
    from apflow_nb.core.storage.sqlalchemy.models import utcnow

    table = model.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.id, table.c.owner).where(table.c.status == "in_progress")).all()
    dead: dict[str, list[str]] = {}
    for task_id, owner in rows:
        if owner and owner_alive(owner) is False:
            dead.setdefault(owner, []).append(task_id)
    if not dead:
        return []
    now = utcnow()
    recovered: list[str] = []
    with engine.begin() as conn:
        for owner, ids in dead.items():
            host, pid, _ = owner.rsplit(":", 2)
            message = (f"the process that ran this task died (pid {pid} on {host}) before it finished; "
                       f"found by process {os.getpid()} when it opened the store. Run the tree again to retry.")
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                result = conn.execute(
                    update(table).where(table.c.id.in_(chunk), table.c.status == "in_progress",
                                        table.c.owner == owner)
                    .values(status="failed", error=message, completed_at=now, updated_at=now,
                            result={"status": "failed", "error": message, "error_type": "ProcessDied"}))
                if result.rowcount:
                    recovered.extend(chunk)
    return recovered
