"""Depth, root and tree order from parent links (the only tree information every store has)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

BATCH = 500


def fetch_missing_ancestors(conn: Connection, tbl: Any, parents: dict[Any, Any]) -> None:
    """Add ``id -> parent_id`` of every ancestor missing from ``parents`` (tasks a filter left out),
    so depths and roots are those of the whole stored tree."""
    c = tbl.c
    missing = {p for p in parents.values() if p is not None and p not in parents}
    if not missing:
        return
    while missing:
        batch = sorted(missing)
        for i in range(0, len(batch), BATCH):
            for task_id, parent in conn.execute(select(c.id, c.parent_id).where(c.id.in_(batch[i:i + BATCH]))):
                parents[task_id] = parent
        for task_id in batch:  # a parent id that is not stored: treat it as a root's missing parent
            parents.setdefault(task_id, None)
        missing = {p for p in parents.values() if p is not None and p not in parents}


def depths_and_roots(parents: dict[Any, Any]) -> tuple[dict[Any, int], dict[Any, Any]]:
    """Depth (0 for a root) and root id of every task in ``parents`` (which must hold every
    ancestor, see :func:`fetch_missing_ancestors`). A parent cycle is cut where it closes.

    Level by level while that settles most tasks (shallow trees: a few passes over plain tuples), then
    chain by chain for what is left (deep chains, cycles)."""
    depth: dict[Any, int] = {t: 0 for t, p in parents.items() if p is None}
    root: dict[Any, Any] = {t: t for t in depth}
    pending = [(t, p) for t, p in parents.items() if p is not None]
    while pending:
        left = []
        for task_id, parent in pending:
            d = depth.get(parent)
            if d is None:
                left.append((task_id, parent))
            else:
                depth[task_id] = d + 1
                root[task_id] = root[parent]
        if len(left) * 2 > len(pending):  # a deep chain or a cycle: walk chains instead
            break
        pending = left
    else:
        return depth, root
    _walk_chains(parents, depth, root)
    return depth, root


def _walk_chains(parents: dict[Any, Any], depth: dict[Any, int], root: dict[Any, Any]) -> None:
    limit = len(parents)
    for task_id, parent in parents.items():
        if task_id in depth:
            continue
        if parent is None:
            depth[task_id], root[task_id] = 0, task_id
            continue
        chain = [task_id]
        node = parent
        while node is not None and node not in depth:
            chain.append(node)
            if len(chain) > limit:  # a cycle: walk it again, remembering what was seen
                chain = _chain_until_cycle(parents, task_id)
                node = None
                break
            node = parents.get(node)
        if node is None:  # chain[-1] is a root (or where a cycle closes)
            base, top = -1, chain[-1]
        else:
            base, top = depth[node], root[node]
        for offset, item in enumerate(reversed(chain), start=1):
            depth[item] = base + offset
            root[item] = top


def _chain_until_cycle(parents: dict[Any, Any], task_id: Any) -> list[Any]:
    chain, seen, node = [], set(), task_id
    while node is not None and node not in seen:
        seen.add(node)
        chain.append(node)
        node = parents.get(node)
    return chain


def tree_order(ids: list[Any], parents: list[Any], keys: list[Any]) -> list[int]:
    """Row positions depth first, each parent before its children, siblings by ``keys`` (creation
    time, then id). Rows whose parent is not among them start their own subtree."""
    present = set(ids)
    children: dict[Any, list[int]] = {}
    tops: list[int] = []
    for i, (task_id, parent) in enumerate(zip(ids, parents)):
        if parent is None or parent not in present or parent == task_id:
            tops.append(i)
        else:
            children.setdefault(parent, []).append(i)
    order_key = lambda i: (keys[i] is None, keys[i], str(ids[i]))  # noqa: E731
    out: list[int] = []
    visited: set[int] = set()
    stack = sorted(tops, key=order_key, reverse=True)
    while stack:
        i = stack.pop()
        if i in visited:
            continue
        visited.add(i)
        out.append(i)
        stack.extend(sorted(children.get(ids[i], ()), key=order_key, reverse=True))
    if len(out) < len(ids):  # rows in a parent cycle that no root reaches: keep them, at the end
        out += [i for i in sorted(range(len(ids)), key=order_key) if i not in visited]
    return out
