"""Which boxes a graph draws: one per task, or, past ``max_nodes`` tasks, cluster boxes.

Grouping rule, coarser until the graph fits (each step only when the previous one leaves too many boxes):
  1. siblings that run the same executor (``fetch ×120 in total``);
  2. children of a parent, by bands of layers (``40 tasks in total · layers 5–8``);
  3. all children of a parent (``340 tasks in total``);
  4. whole top-level subtrees.
The root, and any group named in ``expanded``, stay as single tasks. Contracting groups could
close a cycle (a1 -> b1 -> a2 with a1, a2 in one group); the groups on such a cycle are split into
bands of layers (the narrowest bands that fit), and those still on a cycle by single layer, which
makes the contracted graph acyclic (edges always go to a later layer).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Collection

from apflow_nb.notebook.graph._layout import assign_layers
from apflow_nb.notebook.graph._model import GraphSpec

MAX_NODES = 300

Key = tuple


@dataclass
class Item:
    """One box: a task (one member) or a cluster of tasks (indices into the spec's tasks)."""

    key: str
    members: list[int]
    label: str
    sub: str
    cluster: bool = False


@dataclass
class Plan:
    """Boxes, dependency edges between them (a, b, optional, count), and light parent -> child links."""

    items: list[Item]
    edges: list[tuple[int, int, bool, int]]
    parent_links: list[tuple[int, int]] = field(default_factory=list)
    grouped: bool = False
    item_of: list[int] = field(default_factory=list, repr=False)  # task index -> item index


def plan(spec: GraphSpec, max_nodes: int = MAX_NODES, expanded: Collection[str] = ()) -> Plan:
    """The boxes for ``spec``: every task when it has at most ``max_nodes``, else clusters."""
    n = len(spec.tasks)
    raw = spec.edges()
    if n <= max_nodes:
        keys: list[Key] = [("t", t.id) for t in spec.tasks]
        grouped = False
    else:
        layer = assign_layers(n, [(u, v) for u, v, _ in raw])
        grouped = True
        for rule, banded in ((_by_executor, False), (_by_parent, True), (_by_parent, False),
                             (_by_subtree(spec), False)):
            base = [_key_for(spec, i, rule, expanded) for i in range(n)]
            keys = _fit(spec, base, raw, layer, max_nodes, banded)
            if keys is not None:
                break
        else:
            keys = _split_cycles(base, raw, layer, 1)
    return _build(spec, keys, raw, grouped)


def group_key(key: Key) -> str:
    """The string form of a group's key (what ``expanded`` takes)."""
    return "|".join(f"{k[1]}+{k[2]}" if isinstance(k, tuple) else str(k) for k in key)


def _key_for(spec: GraphSpec, i: int, rule: Callable[[GraphSpec, int], Key], expanded: Collection[str]) -> Key:
    t = spec.tasks[i]
    if t.parent_id is None:
        return ("t", t.id)
    if expanded and group_key(_by_executor(spec, i)) in expanded:
        return ("t", t.id)  # expanded by the user, whichever rule applies now
    key = rule(spec, i)
    return ("t", t.id) if group_key(key) in expanded else key


def _by_executor(spec: GraphSpec, i: int) -> Key:
    t = spec.tasks[i]
    return ("pe", t.parent_id, t.executor)


def _by_parent(spec: GraphSpec, i: int) -> Key:
    return ("p", spec.tasks[i].parent_id)


def _by_subtree(spec: GraphSpec) -> Callable[[GraphSpec, int], Key]:
    top: dict[str, str] = {}
    for t in spec.tasks:  # tree order: a parent before its children
        top[t.id] = t.id if t.depth <= 1 else top.get(t.parent_id or "", t.id)
    return lambda s, i: ("a", top[s.tasks[i].id])


def _fit(spec: GraphSpec, base: list[Key], raw: list[tuple[int, int, bool]], layer: list[int],
         max_nodes: int, banded: bool = False) -> list[Key] | None:
    """``base`` with the groups on a cycle (``banded``: every group) split by layer bands, the
    narrowest that fits; None when even the widest bands leave more than ``max_nodes`` boxes
    (tasks the user expanded do not count)."""
    singles = sum(1 for i, k in enumerate(base) if k[0] == "t" and spec.tasks[i].parent_id is not None)
    band, top = 1, max(layer, default=0) + 1
    while True:
        keys = base
        if banded:
            keys = [k if k[0] == "t" else k + (("L", layer[i] // band * band, band),) for i, k in enumerate(base)]
        keys = _split_cycles(keys, raw, layer, 1 if banded else band)
        if len(set(keys)) - singles <= max_nodes:
            return keys
        if (keys is base and not banded) or band >= top:
            return None
        band *= 2


def _split_cycles(keys: list[Key], raw: list[tuple[int, int, bool]], layer: list[int], band: int) -> list[Key]:
    """Groups on a cycle of the contracted graph are split into bands of ``band`` layers; those
    still on a cycle, by single layer (which cannot cycle: edges always go to a later layer)."""
    cyclic = _cyclic_groups(keys, raw)
    if cyclic is None:
        return keys
    keys = [k + (("L", layer[i] // band * band, band),) if k in cyclic else k for i, k in enumerate(keys)]
    if band == 1:
        return keys
    cyclic = _cyclic_groups(keys, raw)
    if cyclic is None:
        return keys
    return [k[:-1] + (("L", layer[i], 1),) if k in cyclic else k for i, k in enumerate(keys)]


def _cyclic_groups(keys: list[Key], raw: list[tuple[int, int, bool]]) -> set[Key] | None:
    ids: dict[Key, int] = {}
    gid = [ids.setdefault(k, len(ids)) for k in keys]
    succ: list[list[int]] = [[] for _ in ids]
    for u, v, _ in raw:
        if gid[u] != gid[v]:
            succ[gid[u]].append(gid[v])
    on_cycle = _in_cycles(succ)
    if on_cycle is None:
        return None
    return {k for k, g in ids.items() if on_cycle[g]}


def _in_cycles(succ: list[list[int]]) -> list[bool] | None:
    """For each node, whether it lies on a cycle (strongly connected component of 2 or more;
    Kosaraju, iterative); None when the graph is acyclic."""
    n = len(succ)
    seen = [False] * n
    finish: list[int] = []
    for start in range(n):
        if seen[start]:
            continue
        seen[start] = True
        stack = [(start, iter(succ[start]))]
        while stack:
            v, it = stack[-1]
            for w in it:
                if not seen[w]:
                    seen[w] = True
                    stack.append((w, iter(succ[w])))
                    break
            else:
                stack.pop()
                finish.append(v)
    pred: list[list[int]] = [[] for _ in range(n)]
    for v, ws in enumerate(succ):
        for w in ws:
            pred[w].append(v)
    comp = [-1] * n
    sizes: list[int] = []
    for start in reversed(finish):
        if comp[start] >= 0:
            continue
        c = len(sizes)
        comp[start], todo, size = c, [start], 0
        while todo:
            v = todo.pop()
            size += 1
            for w in pred[v]:
                if comp[w] < 0:
                    comp[w] = c
                    todo.append(w)
        sizes.append(size)
    if all(s == 1 for s in sizes):
        return None
    return [sizes[comp[v]] > 1 for v in range(n)]


def _build(spec: GraphSpec, keys: list[Key], raw: list[tuple[int, int, bool]], grouped: bool) -> Plan:
    index: dict[Key, int] = {}
    members: list[list[int]] = []
    for i, k in enumerate(keys):
        j = index.setdefault(k, len(members))
        if j == len(members):
            members.append([])
        members[j].append(i)
    items = [_item(spec, k, m) for k, m in zip(index, members)]
    item_of = [index[k] for k in keys]
    agg: dict[tuple[int, int], list] = {}
    for u, v, req in raw:
        a, b = item_of[u], item_of[v]
        if a != b:
            entry = agg.setdefault((a, b), [False, 0])
            entry[0] |= req
            entry[1] += 1
    edges = [(a, b, not req, count) for (a, b), (req, count) in agg.items()]
    links: list[tuple[int, int]] = []
    if not grouped:
        linked = set(agg) | {(b, a) for a, b in agg}
        for i, t in enumerate(spec.tasks):
            if t.parent_id is not None:
                p = item_of[spec.index[t.parent_id]]
                if (p, item_of[i]) not in linked:
                    links.append((p, item_of[i]))
    return Plan(items, edges, links, grouped, item_of)


def _item(spec: GraphSpec, key: Key, members: list[int]) -> Item:
    if len(members) == 1:
        t = spec.tasks[members[0]]
        return Item(key=t.id, members=members, label=t.key, sub=t.executor)
    first = spec.tasks[members[0]]
    parent = spec.tasks[spec.index[first.parent_id]].key if first.parent_id in spec.index else ""
    step = ""
    name = key
    while isinstance(name[-1], tuple):  # a band of layers ("L", first, width)
        _, low, width = name[-1]
        step = step or (f" · layer {low + 1}" if width == 1 else f" · layers {low + 1}–{low + width}")
        name = name[:-1]  # the finest band (the last one added) names the cluster
    if name[0] == "pe":
        label, sub = f"{first.executor} ×{len(members)}", f"in {parent}{step}"
    elif name[0] == "p":
        label, sub = f"{len(members)} tasks", f"in {parent}{step}"
    else:
        label, sub = f"{len(members)} tasks", f"subtree {spec.tasks[spec.index[name[1]]].key}{step}"
    return Item(key=group_key(key), members=members, label=label, sub=sub, cluster=True)
