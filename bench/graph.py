"""The graph view, measured (never part of the tests).

    python bench/graph.py [--quick] [--no-kernel]

1. layout time of the pure-Python layered layout for 100, 1,000 and 10,000 tasks: random layered
   DAGs and the tutorials' shapes (fan-in, chains, map-reduce), the layout alone (every task a box)
   and what ``apflow_nb.graph(tasks)`` does end to end (check, group past 300 tasks, lay out, draw);
2. edge crossings on a fixed set of DAGs, ours and graphviz ``dot``'s (when ``dot`` is installed:
   ``apt-get install graphviz``, for this bench only), counted the same way on both drawings: the
   edges as drawn (curves sampled into polylines), pairs of edges without a common end;
3. the kernel-side cost of the live graph at 10,000 progress events/s, inside a real ipykernel
   (see bench/view.py for the table's): the graph drawer's redraw cost, and an A/B of runs with the
   view detached and with the graph face attached.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apflow_nb.notebook.graph import graph, layered_layout  # noqa: E402

Edge = tuple[int, int]


# -- shapes ---------------------------------------------------------------------------------------

def random_layered(n: int, seed: int, width: int = 40) -> list[Edge]:
    """n nodes in layers of about ``width``; each takes 1-3 inputs, mostly from the layer before."""
    r = random.Random(seed)
    layers = [list(range(i, min(n, i + width))) for i in range(0, n, width)]
    edges = []
    for k, layer in enumerate(layers[1:], start=1):
        for v in layer:
            for _ in range(r.randint(1, 3)):
                back = 1 if r.random() < 0.8 else min(k, r.randint(2, 3))
                edges.append((r.choice(layers[k - back]), v))
    return list(dict.fromkeys(edges))


def fan_in(n: int) -> list[Edge]:
    return [(i, n - 1) for i in range(n - 1)]


def chains(n: int, length: int = 10) -> list[Edge]:
    return [(i, i + 1) for i in range(n - 1) if (i + 1) % length]


def map_reduce(n: int, groups: int = 10) -> list[Edge]:
    """fetch -> parse per item, a reducer per group, one final total (the tutorials' pipelines)."""
    items = max(1, (n - groups - 1) // 2)
    edges = [(i, items + i) for i in range(items)]
    reducers = 2 * items
    edges += [(items + i, reducers + i % groups) for i in range(items)]
    edges += [(reducers + g, reducers + groups) for g in range(groups)]
    return edges


def as_tasks(n: int, edges: list[Edge]) -> list[dict]:
    deps: dict[int, list[str]] = {}
    for u, v in edges:
        deps.setdefault(v, []).append(f"t{u}")
    return [{"id": "root", "name": "agg"}] + [
        {"id": f"t{i}", "name": f"exec{i % 5}", "parent_id": "root", "dependencies": deps.get(i, [])}
        for i in range(n)]


def nodes_of(edges: list[Edge]) -> int:
    return 1 + max((max(u, v) for u, v in edges), default=0)


# -- 1. layout time ---------------------------------------------------------------------------------

def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def layout_times(sizes: list[int]) -> None:
    print("| shape | tasks | edges | layout alone (every task a box): s | dummies | crossings | "
          "graph(tasks) end to end: s | boxes drawn |")
    print("|---|---|---|---|---|---|---|---|")
    for n in sizes:
        for name, edges in (("random layered", random_layered(n, 1)), ("fan-in", fan_in(n)),
                            ("chains of 10", chains(n)), ("map-reduce", map_reduce(n))):
            size = nodes_of(edges)
            repeat = 3 if n <= 1000 else 1
            lay = layered_layout(size, edges)
            alone = best_of(lambda: layered_layout(size, edges), repeat)
            tasks = as_tasks(size, edges)
            end = best_of(lambda: graph(tasks)._repr_mimebundle_(), repeat)
            boxes = len(graph(tasks).face.plan.items)
            print(f"| {name} | {size:,} | {len(edges):,} | {alone:.3f} | {lay.dummies:,} | {lay.crossings:,} | "
                  f"{end:.3f} | {boxes} |")


# -- 2. crossings against dot ----------------------------------------------------------------------

def _bezier(p0, p1, p2, p3, steps: int = 8):
    out = []
    for k in range(1, steps + 1):
        t = k / steps
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t ** 3
        out.append((a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]))
    return out


def our_polylines(n: int, edges: list[Edge]) -> list[list[tuple[float, float]]]:
    lay = layered_layout(n, edges)
    out = []
    for route in lay.routes:
        pts = [route[0]]
        for (x0, y0), (x1, y1) in zip(route, route[1:]):
            if abs(y1 - y0) < 0.5:
                pts.append((x1, y1))
            else:
                mid = (x1 - x0) / 2
                pts += _bezier((x0, y0), (x0 + mid, y0), (x1 - mid, y1), (x1, y1))
        out.append(pts)
    return out


def dot_polylines(n: int, edges: list[Edge]) -> list[list[tuple[float, float]]]:
    lines = ["digraph G { rankdir=LR; node [shape=box, width=2.3, height=0.6, fixedsize=true];"]
    lines += [f"n{i};" for i in range(n)] + [f"n{u} -> n{v};" for u, v in edges] + ["}"]
    out = subprocess.run(["dot", "-Tplain"], input="\n".join(lines), capture_output=True, text=True, check=True).stdout
    curves = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "edge":
            count = int(parts[3])
            pts = [(float(parts[4 + 2 * k]), float(parts[5 + 2 * k])) for k in range(count)]
            poly = [pts[0]]
            for k in range(0, len(pts) - 3, 3):
                poly += _bezier(*pts[k:k + 4])
            curves.setdefault((int(parts[1][1:]), int(parts[2][1:])), []).append(poly)
    return [curves[e].pop(0) for e in edges]


def _cross(a, b, c, d) -> bool:
    def orient(p, q, r):
        v = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        return (v > 1e-12) - (v < -1e-12)
    return orient(a, b, c) * orient(a, b, d) < 0 and orient(c, d, a) * orient(c, d, b) < 0


def crossings(polys, edges: list[Edge]) -> int:
    boxes = [(min(p[0] for p in q), min(p[1] for p in q), max(p[0] for p in q), max(p[1] for p in q)) for q in polys]
    total = 0
    for i in range(len(polys)):
        for j in range(i + 1, len(polys)):
            if set(edges[i]) & set(edges[j]):
                continue
            bi, bj = boxes[i], boxes[j]
            if bi[2] < bj[0] or bj[2] < bi[0] or bi[3] < bj[1] or bj[3] < bi[1]:
                continue
            pi, pj = polys[i], polys[j]
            total += sum(1 for a, b in zip(pi, pi[1:]) for c, d in zip(pj, pj[1:]) if _cross(a, b, c, d))
    return total


def crossing_table() -> None:
    cases = [("diamond", [(0, 1), (0, 2), (1, 3), (2, 3)]),
             ("quickstart fan-in (5)", fan_in(5)),
             ("map-reduce (61)", map_reduce(61, groups=5)),
             ("chains of 10 (60)", chains(60))]
    cases += [(f"random layered {n} (seed {s})", random_layered(n, s, width=max(4, n // 8)))
              for n, s in ((20, 1), (40, 2), (60, 3), (80, 4), (100, 5))]
    have_dot = shutil.which("dot") is not None
    print("| DAG | nodes | edges | ours: crossings | dot: crossings | ours / dot |")
    print("|---|---|---|---|---|---|")
    ours_total = dot_total = 0
    for name, edges in cases:
        n = nodes_of(edges)
        ours = crossings(our_polylines(n, edges), edges)
        ours_total += ours
        if have_dot:
            theirs = crossings(dot_polylines(n, edges), edges)
            dot_total += theirs
            ratio = f"{ours / theirs:.2f}" if theirs else ("1.00" if ours == 0 else "∞")
            print(f"| {name} | {n} | {len(edges)} | {ours} | {theirs} | {ratio} |")
        else:
            print(f"| {name} | {n} | {len(edges)} | {ours} | (dot not installed) | |")
    if have_dot:
        print(f"| **all** | | | {ours_total} | {dot_total} | {ours_total / max(1, dot_total):.2f} |")


# -- 3. live cost in a kernel -----------------------------------------------------------------------

KERNEL_CODE = Path(__file__).with_name("graph_kernel.py")


def kernel_cost(tasks: int, repeat: int) -> None:
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    code = f"TASKS, REPEAT = {tasks}, {repeat}\n" + KERNEL_CODE.read_text()
    nb = new_notebook(cells=[new_code_cell(code)])
    NotebookClient(nb, timeout=1800, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.get("output_type") == "stream")
    r = json.loads(text.split("RESULT ", 1)[1].splitlines()[0])
    pd_, pa = r["paced"]["detached"], r["paced"]["graph"]
    cpu_d, cpu_a = statistics.median(x["cpu"] for x in pd_), statistics.median(x["cpu"] for x in pa)
    wall_d, wall_a = statistics.median(x["wall"] for x in pd_), statistics.median(x["wall"] for x in pa)
    print("| measure | detached | graph face attached | ratio |\n|---|---|---|---|")
    print(f"| paced 10,000 events/s, {tasks} tasks: wall s | {wall_d:.2f} | {wall_a:.2f} | {wall_a / wall_d:.2f}x |")
    print(f"| paced: kernel CPU s | {cpu_d:.2f} | {cpu_a:.2f} | {cpu_a / cpu_d:.2f}x |")
    for label, key in (("one redraw, 300 tasks (boxes) all running", "redraw_300"),
                       (f"one redraw, {tasks} tasks grouped, all running", "redraw_big"),
                       ("one redraw, 10,000 tasks grouped, all running", "redraw_10k")):
        d = r[key]
        print(f"| {label}: CPU ms (graph {d['bytes'] / 1000:.0f} kB, {d['boxes']} boxes) | - | {d['cpu_ms']:.2f} | |")
    base = cpu_d / wall_d
    worst = min(max(r["redraw_big"]["cpu_ms"], r["redraw_300"]["cpu_ms"]) * 10 / 1e3, r["budget"])
    print(f"\nThe graph face's own cost (events are applied to the state once, whatever the drawers): at most "
          f"10 redraws/s and at most {100 * r['budget']:.0f}% of a core (a costly redraw delays the next): "
          f"{1e3 * worst:.1f} ms CPU per second in the worst case above = {100 * worst / base:.1f}% of the detached "
          f"kernel's {1e3 * base:.0f} ms per second. Target (at most 10%): "
          f"{'met' if worst / base <= 0.10 else 'NOT met'}.")
    print(f"runs (paced kernel CPU s): detached {[round(x['cpu'], 2) for x in pd_]}, "
          f"graph {[round(x['cpu'], 2) for x in pa]}; graph redraws {[x['redraws'] for x in pa]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 1,000 only, one kernel run")
    parser.add_argument("--no-kernel", action="store_true", help="skip the live cost (no kernel started)")
    args = parser.parse_args()
    print(f"Graph view bench: Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"dot {'installed' if shutil.which('dot') else 'not installed'}\n")
    print("## Layout time\n")
    layout_times([100, 1000] if args.quick else [100, 1000, 10_000])
    print("\n## Edge crossings, ours and graphviz dot's\n")
    crossing_table()
    if not args.no_kernel:
        print("\n## Live graph in a kernel at 10,000 progress events/s\n")
        kernel_cost(1000, 1 if args.quick else 3)


if __name__ == "__main__":
    main()
