"""Layered (Sugiyama-style) layout of a DAG, left to right, in pure Python: no graphviz binary.

Steps, each linear or near-linear in nodes + edges so 10,000 tasks lay out in about a second:
  1. layers: longest path from the sources, then sources pulled next to their first consumer;
  2. long edges broken into dummy nodes, one per layer they cross;
  3. crossing reduction: barycenter and median sweeps down and up, keeping the best order seen, plus
     adjacent swaps ("transpose") while the graph is small;
  4. coordinates: within each layer, nodes are pulled towards their neighbours' mean height by
     weighted isotonic regression (pool adjacent violators) under minimum separations, so no two
     nodes overlap and long edges run straight.
Deterministic: no randomness, no iteration over sets; equal keys keep their earlier order.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

Point = tuple[float, float]


@dataclass(frozen=True)
class Geometry:
    """Sizes in px: node boxes, dummy slots (where long edges pass), gaps between them."""

    node_w: float = 170.0
    node_h: float = 46.0
    layer_gap: float = 64.0
    node_gap: float = 14.0
    dummy_h: float = 6.0
    margin: float = 12.0


@dataclass
class Layout:
    """Where every node sits (centres), and the polyline each edge follows (source to target)."""

    layer: list[int]
    x: list[float]
    y: list[float]
    width: float
    height: float
    routes: list[list[Point]]
    order: list[list[int]] = field(repr=False)  # per layer, node indices; dummies are >= len(layer)
    crossings: int = 0
    dummies: int = 0
    geometry: Geometry = field(default_factory=Geometry, repr=False)


def layered_layout(n: int, edges: Sequence[tuple[int, int]], geometry: Geometry | None = None) -> Layout:
    """Lay out nodes ``0..n-1`` with ``edges`` (u, v): u is drawn in an earlier layer than v.

    Raises ValueError on a cycle. Duplicate edges share a route.
    """
    g = geometry or Geometry()
    layer = assign_layers(n, edges)
    unique = list(dict.fromkeys((u, v) for u, v in edges if u != v))
    up, down, node_layer, chains = _add_dummies(n, unique, layer)
    order = _initial_order(n, up, down, node_layer)
    crossings = reduce_crossings(order, up, down, max_rounds=12 if len(node_layer) <= 20_000 else 4)
    y = _coordinates(order, up, down, n, g)
    top = min((y[v] - _half(v, n, g) for lay in order for v in lay), default=0.0)
    y = [v - top + g.margin for v in y]
    pitch = g.node_w + g.layer_gap
    xs = [g.margin + node_layer[v] * pitch + g.node_w / 2 for v in range(len(node_layer))]
    routes_by_edge = {}
    for (u, v), chain in zip(unique, chains):
        pts: list[Point] = [(xs[u] + g.node_w / 2, y[u])]
        for d in chain:
            pts += [(xs[d] - g.node_w / 2, y[d]), (xs[d] + g.node_w / 2, y[d])]
        pts.append((xs[v] - g.node_w / 2, y[v]))
        routes_by_edge[(u, v)] = pts
    routes = [routes_by_edge.get((u, v), [(xs[u], y[u])]) for u, v in edges]
    layers = max(layer, default=-1) + 1
    height = max((y[v] + _half(v, n, g) for lay in order for v in lay), default=0.0) + g.margin
    width = 2 * g.margin + max(0, layers) * pitch - (g.layer_gap if layers else 0)
    return Layout(layer=layer, x=xs[:n], y=y[:n], width=width, height=max(height, 2 * g.margin), routes=routes,
                  order=order, crossings=crossings, dummies=len(node_layer) - n, geometry=g)


def assign_layers(n: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Longest path from the sources; then each source moves right, next to its earliest consumer."""
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for u, v in edges:
        if u != v:
            succ[u].append(v)
            indeg[v] += 1
    sources = [v for v in range(n) if indeg[v] == 0]
    layer = [0] * n
    queue = deque(sources)
    seen = 0
    while queue:
        u = queue.popleft()
        seen += 1
        for v in succ[u]:
            if layer[u] + 1 > layer[v]:
                layer[v] = layer[u] + 1
            indeg[v] -= 1
            if indeg[v] == 0:
                queue.append(v)
    if seen != n:
        raise ValueError("the graph has a cycle: a layered layout needs a DAG")
    # shorten edges (a greedy step towards graphviz's network simplex): a node with more
    # consumers than inputs moves right, next to its earliest consumer, in reverse topological order
    pred_count = [0] * n
    for u, v in edges:
        if u != v:
            pred_count[v] += 1
    for _ in range(2):
        for v in sorted(range(n), key=layer.__getitem__, reverse=True):
            if succ[v] and len(succ[v]) > pred_count[v]:
                layer[v] = max(layer[v], min(layer[s] for s in succ[v]) - 1)
    return layer


def _add_dummies(n: int, edges: list[tuple[int, int]], layer: list[int]):  # type: ignore[no-untyped-def]
    """Adjacency between consecutive layers, with a dummy node wherever an edge skips a layer."""
    node_layer = list(layer)
    up: list[list[int]] = [[] for _ in range(n)]
    down: list[list[int]] = [[] for _ in range(n)]
    chains: list[list[int]] = []
    for u, v in edges:
        chain = []
        prev = u
        for lay in range(layer[u] + 1, layer[v]):
            d = len(node_layer)
            node_layer.append(lay)
            up.append([prev])
            down.append([])
            down[prev].append(d)
            chain.append(d)
            prev = d
        down[prev].append(v)
        up[v].append(prev)
        chains.append(chain)
    return up, down, node_layer, chains


def _initial_order(n: int, up: list[list[int]], down: list[list[int]], node_layer: list[int]) -> list[list[int]]:
    """Depth-first from the sources in input order: chains and siblings start out side by side."""
    rank = [-1] * len(node_layer)
    counter = 0
    for start in range(n):
        if rank[start] >= 0 or up[start]:
            continue
        stack = [start]
        while stack:
            v = stack.pop()
            if rank[v] >= 0:
                continue
            rank[v] = counter
            counter += 1
            stack.extend(w for w in reversed(down[v]) if rank[w] < 0)
    for v in range(len(node_layer)):  # unreachable from a source cannot happen in a DAG; be safe
        if rank[v] < 0:
            rank[v] = counter
            counter += 1
    layers: list[list[int]] = [[] for _ in range(max(node_layer, default=-1) + 1)]
    for v in sorted(range(len(node_layer)), key=rank.__getitem__):
        layers[node_layer[v]].append(v)
    return layers


# -- crossing reduction ---------------------------------------------------------------------------

def count_crossings(order: list[list[int]], down: list[list[int]]) -> int:
    """Edge crossings between consecutive layers (inversions, counted with a Fenwick tree)."""
    total = 0
    pos = {}
    for lay in order:
        for i, v in enumerate(lay):
            pos[v] = i
    for lay, nxt in zip(order, order[1:]):
        targets = sorted((pos[v], pos[w]) for v in lay for w in down[v])
        size = len(nxt)
        tree = [0] * (size + 1)
        seen = 0
        for _, p in targets:
            # how many earlier edges end strictly right of p: seen - (ends <= p)
            i, below = p + 1, 0
            while i > 0:
                below += tree[i]
                i -= i & -i
            total += seen - below
            i = p + 1
            while i <= size:
                tree[i] += 1
                i += i & -i
            seen += 1
    return total


def reduce_crossings(order: list[list[int]], up: list[list[int]], down: list[list[int]],
                     max_rounds: int = 12) -> int:
    """Reorder ``order`` in place to reduce crossings; returns the crossings of the order kept.

    Sweeps with the barycenter heuristic and, from the same start, with the median one; the order
    with the fewest crossings wins (neither heuristic is better on every graph).
    """
    start = [list(lay) for lay in order]
    best, best_count = start, count_crossings(order, down)
    size = sum(len(lay) for lay in order)
    for key in (_barycenter, _median) if size <= 20_000 else (_median,):
        trial = [list(lay) for lay in start]
        count = _sweeps(trial, up, down, key, max_rounds, best_count)
        if count < best_count:
            best, best_count = trial, count
    order[:] = best
    return best_count


def _sweeps(order: list[list[int]], up: list[list[int]], down: list[list[int]], key, max_rounds: int,
            start_count: int) -> int:  # type: ignore[no-untyped-def]
    best = [list(lay) for lay in order]
    best_count = start_count
    transpose = sum(len(lay) for lay in order) <= 1500  # adjacent swaps are quadratic in degree
    stale = 0
    for round_ in range(max_rounds):
        if best_count == 0:
            break
        if round_ % 2 == 0:
            for i in range(1, len(order)):
                _sort_layer(order, i, up, i - 1, key)
        else:
            for i in range(len(order) - 2, -1, -1):
                _sort_layer(order, i, down, i + 1, key)
        if transpose:
            _transpose(order, up, down)
        count = count_crossings(order, down)
        if count < best_count:
            best_count, best, stale = count, [list(lay) for lay in order], 0
        else:
            stale += 1
            if stale >= 3:
                break
    order[:] = best
    return best_count


def _barycenter(positions: list[int]) -> float:
    return sum(positions) / len(positions)


def _median(positions: list[int]) -> float:
    positions = sorted(positions)
    m = len(positions) // 2
    return positions[m] if len(positions) % 2 else (positions[m - 1] + positions[m]) / 2


def _sort_layer(order: list[list[int]], i: int, adj: list[list[int]], ref: int, key=_barycenter) -> None:  # type: ignore[no-untyped-def]
    """Order layer i by ``key`` of its neighbours' positions in layer ``ref``; nodes without
    neighbours there keep their slot."""
    pos = {v: k for k, v in enumerate(order[ref])}
    lay = order[i]
    movable = []
    fixed = [False] * len(lay)
    for k, v in enumerate(lay):
        nbrs = adj[v]
        if nbrs:
            movable.append((key([pos[w] for w in nbrs]), k, v))
        else:
            fixed[k] = True
    movable.sort()
    it = iter(movable)
    order[i] = [lay[k] if fixed[k] else next(it)[2] for k in range(len(lay))]


def _pair_crossings(a: int, b: int, adj: list[list[int]], pos: dict[int, int]) -> int:
    """Crossings between the edges of a and of b (a placed before b) towards one neighbour layer."""
    pb = [pos[w] for w in adj[b]]
    return sum(1 for w in adj[a] for q in pb if pos[w] > q)


def _transpose(order: list[list[int]], up: list[list[int]], down: list[list[int]]) -> None:
    """Swap neighbours in a layer while that removes crossings (with the layers on both sides)."""
    pos = {v: k for lay in order for k, v in enumerate(lay)}
    improved = True
    passes = 0
    while improved and passes < 4:
        improved = False
        passes += 1
        for lay in order:
            for k in range(len(lay) - 1):
                a, b = lay[k], lay[k + 1]
                now = _pair_crossings(a, b, up, pos) + _pair_crossings(a, b, down, pos)
                swapped = _pair_crossings(b, a, up, pos) + _pair_crossings(b, a, down, pos)
                if swapped < now:
                    lay[k], lay[k + 1] = b, a
                    pos[a], pos[b] = k + 1, k
                    improved = True


# -- coordinates ------------------------------------------------------------------------------------

def _half(v: int, n: int, g: Geometry) -> float:
    return (g.node_h if v < n else g.dummy_h) / 2


def _coordinates(order: list[list[int]], up: list[list[int]], down: list[list[int]], n: int,
                 g: Geometry) -> list[float]:
    """Heights: packed, then pulled towards neighbours (down, up, then both) without overlapping."""
    total = sum(len(lay) for lay in order)
    y = [0.0] * total
    offsets = []
    for lay in order:
        c, off = 0.0, []
        for k, v in enumerate(lay):
            if k:
                c += _half(lay[k - 1], n, g) + _half(v, n, g) + (g.node_gap if v < n and lay[k - 1] < n
                                                                  else g.node_gap / 2)
            off.append(c)
        offsets.append(off)
        for v, o in zip(lay, off):
            y[v] = o
    both = [u + d for u, d in zip(up, down)]
    rounds = 3 if total <= 20_000 else 1
    passes = [(range(1, len(order)), up), (range(len(order) - 2, -1, -1), down)] * rounds
    passes.append((range(len(order)), both))
    for layers, adj in passes:
        for i in layers:
            lay = order[i]
            targets, weights = [], []
            for v in lay:
                nbrs = adj[v]
                if nbrs:
                    targets.append(sum(y[w] for w in nbrs) / len(nbrs))
                    weights.append(float(len(nbrs)) if v < n else 4.0)  # dummies hold long edges straight
                else:
                    targets.append(y[v])
                    weights.append(0.25)
            for v, value in zip(lay, _isotonic(targets, weights, offsets[i])):
                y[v] = value
    return y


def _isotonic(targets: list[float], weights: list[float], offsets: list[float]) -> list[float]:
    """Positions p minimising sum w (p - t)^2 with p[k] - p[k-1] >= offsets[k] - offsets[k-1]."""
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for t, w, o in zip(targets, weights, offsets):
        blocks.append([w * (t - o), w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, ww, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += ww
            blocks[-1][2] += c
    out: list[float] = []
    for s, w, c in blocks:
        out.extend([s / w] * int(c))
    return [z + o for z, o in zip(out, offsets)]
