"""Orphaned runs: trees left unfinished by a process that died (a killed kernel, a crash).

Each running task records its owner, ``host:pid:start`` (the process start time tells a reused
pid apart), and each run holds a lease (``storage/runs.py``). When a process opens a store, every
tree whose run died — a task in_progress owned by a dead process, or an unfinished lease whose owner
is gone — is ended as a whole: its in_progress tasks fail ("its process died"), its pending tasks
fail too (naming the failed required dependency when they had one), and the event log records it.
A process is dead when it no longer exists, has become a zombie, or its pid now belongs to another
process. A live owner's tasks are never touched; tasks owned by another host are ended only when
that host's lease heartbeat is older than the lease's time to live.
"""
from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, and_, insert, select, update

from apflow_nb.core.storage.processes import owner_alive, process_identity
from apflow_nb.core.storage.runs import owner_gone, runs
from apflow_nb.core.storage.sqlalchemy.models import task_events, utcnow

def _died(owner: str) -> str:
    host, pid, _ = owner.rsplit(":", 2)
    return f"the process that ran this tree died (pid {pid} on {host})"


def dead_runs(engine: Engine, model: Any) -> dict[str, str]:
    """Root ids of runs whose process is gone, with the dead owner's identity."""
    table = model.__table__
    dead: dict[str, str] = {}
    with engine.connect() as conn:
        for root_id, owner in conn.execute(select(table.c.root_id, table.c.owner)
                                           .where(table.c.status == "in_progress").distinct()):
            if owner and root_id and owner_alive(owner) is False:
                dead.setdefault(root_id, owner)
        for root_id, owner, beat in conn.execute(select(runs.c.root_id, runs.c.owner, runs.c.heartbeat_at)
                                                 .where(runs.c.finished_at.is_(None))):
            if owner != process_identity() and owner_gone(owner, beat):
                dead.setdefault(root_id, owner)
    return dead


def recover_orphans(engine: Engine, model: Any) -> list[str]:
    """End every dead run's unfinished tasks (see the module docstring); return their ids."""
    recovered: list[str] = []
    for root_id, owner in dead_runs(engine, model).items():
        recovered.extend(recover_tree(engine, model, root_id, owner))
    return recovered


def recover_tree(engine: Engine, model: Any, root_id: str, owner: str) -> list[str]:
    """End one dead run: in_progress and pending tasks fail, the event log and the lease say so."""
    table = model.__table__
    c = table.c
    with engine.begin() as conn:
        rows = conn.execute(select(c.id, c.key, c.name, c.status, c.dependencies, c.owner)
                            .where(and_(c.root_id == root_id, c.status.in_(("pending", "in_progress"))))).all()
        failed = {r.id for r in conn.execute(select(c.id).where(and_(c.root_id == root_id, c.status == "failed")))}
        keys = {r.id: r.key or r.id for r in rows}
        now = utcnow()
        host, pid, _ = owner.rsplit(":", 2)
        message = (f"the process that ran this task died (pid {pid} on {host}) before it finished; found by "
                   f"process {os.getpid()}. Run the tree again to retry.")
        ended: list[tuple[Any, str, dict[str, Any]]] = []
        for r in rows:
            if r.status == "in_progress":
                ended.append((r, message, {"status": "failed", "error": message, "error_type": "ProcessDied"}))
                failed.add(r.id)
        for r in _pending_in_order(rows):
            required = [d for d in (r.dependencies or []) if isinstance(d, dict) and d.get("required", True)]
            upstream = next((d["id"] for d in required if d["id"] in failed), None)
            if upstream is not None:
                key = keys.get(upstream, upstream)
                text = f"skipped: required dependency {key!r} failed: its process died"
                result = {"status": "failed", "error": text, "error_type": "DependencyFailed", "upstream": key}
            else:
                text = f"{_died(owner)} before this task started"
                result = {"status": "failed", "error": text, "error_type": "ProcessDied"}
            ended.append((r, text, result))
            failed.add(r.id)
        for r, text, result in ended:
            conn.execute(update(table).where(and_(c.id == r.id, c.status == r.status))
                         .values(status="failed", error=text, result=result, completed_at=now, updated_at=now))
        if ended:
            conn.execute(insert(task_events), [
                {"event_type": "task_failed", "task_id": r.id, "root_id": root_id, "name": r.name,
                 "status": "failed", "progress": None, "timestamp": now,
                 "payload": {"error": text, "error_type": result["error_type"], "recovered": True}}
                for r, text, result in ended])
        conn.execute(update(runs).where(and_(runs.c.root_id == root_id, runs.c.owner == owner))
                     .values(finished_at=now, status="failed"))
    return [r.id for r, _, _ in ended]


def _pending_in_order(rows: list[Any]) -> list[Any]:
    """Pending rows, each after the pending rows it depends on (so a skip names the first failure)."""
    pending = {r.id: r for r in rows if r.status == "pending"}
    out: list[Any] = []
    seen: set[str] = set()
    for start in pending:
        stack = [(start, False)]
        while stack:
            rid, expanded = stack.pop()
            if rid in seen:
                continue
            if expanded:
                seen.add(rid)
                out.append(pending[rid])
                continue
            stack.append((rid, True))
            for d in pending[rid].dependencies or []:
                dep = d.get("id") if isinstance(d, dict) else d
                if dep in pending and dep not in seen:
                    stack.append((dep, False))
    return out
