"""Per-task overhead of the core: flat, chain and fan-in trees on the default SQLite file.

Every state change of every task is persisted (write-behind batches) and the event log is on.
Each (shape, N) runs in its own process so peak memory is its own. Usage:

    python bench/core.py                 # N = 100, 1000, 10000
    python bench/core.py --sizes 100 1000 --repeat 3
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

SHAPES = ("flat", "chain", "fanin")


def build_specs(shape: str, n: int) -> list[dict]:
    """Task specs (parents before children) for one tree shape of n tasks (plus a root where the shape has one)."""
    if shape == "flat":  # a root and n independent children
        specs = [{"id": "root", "name": "noop"}]
        specs += [{"id": f"t{i}", "name": "noop", "parent_id": "root"} for i in range(n)]
    elif shape == "chain":  # n tasks, each depending on the previous
        specs = [{"id": "t0", "name": "noop"}]
        specs += [{"id": f"t{i}", "name": "noop", "parent_id": "t0", "dependencies": [f"t{i - 1}"]}
                  for i in range(1, n)]
    elif shape == "fanin":  # n independent tasks and one aggregator depending on all of them
        specs = [{"id": "root", "name": "aggregate_results_executor", "dependencies": [f"t{i}" for i in range(n)]}]
        specs += [{"id": f"t{i}", "name": "noop", "parent_id": "root"} for i in range(n)]
    else:
        raise ValueError(shape)
    return specs


def child(shape: str, n: int) -> None:
    """Run one measurement in this process and print a JSON line."""
    import asyncio
    import resource

    workdir = tempfile.TemporaryDirectory(prefix="apflow-bench-", ignore_cleanup_errors=True)  # removed below
    os.chdir(workdir.name)
    t_import = time.perf_counter()
    from apflow_nb import ExecutableTask, TaskManager, TaskTreeNode, create_session, executor_register
    import_s = time.perf_counter() - t_import

    class Noop(ExecutableTask):
        id = "noop"

        async def execute(self, inputs):
            return {"ok": True}

    executor_register(Noop)

    async def main() -> dict:
        db = create_session()  # the default embedded store: ./.apflow/tasks.db
        manager = TaskManager(db)
        specs = build_specs(shape, n)
        t0 = time.perf_counter()
        tasks = manager.task_repository.create_tasks(specs)
        nodes = {t.id: TaskTreeNode(t) for t in tasks}
        root = nodes[specs[0]["id"]]
        for spec in specs[1:]:
            nodes[spec["parent_id"]].add_child(nodes[spec["id"]])
        create_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = await manager.distribute_task_tree(root)
        run_s = time.perf_counter() - t0
        assert result.tree_status == "completed", result.tree_status
        from sqlalchemy import text

        stored = db.execute(text("select count(*) from apflow_tasks where status = 'completed'")).scalar()
        assert stored == len(specs), (stored, len(specs))
        return {"tasks": len(specs), "create_s": create_s, "run_s": run_s, "events": manager.writer.events_written}

    try:
        out = asyncio.run(main())
    finally:
        from apflow_nb.core.storage.session import dispose_engines

        dispose_engines()
        os.chdir(tempfile.gettempdir())
        workdir.cleanup()
    out.update(shape=shape, n=n, import_s=import_s,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out))


def measure(shape: str, n: int, repeat: int) -> dict:
    best = None
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, __file__, "--child", shape, str(n)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"benchmark {shape} N={n} failed:\n{proc.stderr}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        if best is None or row["run_s"] < best["run_s"]:
            best = row
    return best  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell; the fastest is reported")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    print(f"apflow_nb core benchmark: Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"SQLite file store, every state change persisted, event log on; best of {args.repeat}")
    header = ("shape", "N", "tasks", "create ms/task", "run ms/task", "run s", "peak RSS MB")
    rows = []
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for shape in args.shapes:
        for n in args.sizes:
            r = measure(shape, n, args.repeat)
            rows.append(r)
            print(f"| {shape} | {n} | {r['tasks']} | {1000 * r['create_s'] / r['tasks']:.3f} | "
                  f"{1000 * r['run_s'] / r['tasks']:.3f} | {r['run_s']:.3f} | {r['peak_rss_mb']:.0f} |", flush=True)
    by = {(r["shape"], r["n"]): r for r in rows}
    sizes = sorted(args.sizes)
    if len(sizes) > 1:
        print()
        print(f"| shape | run ms/task at N={sizes[-1]} / at N={sizes[0]} |")
        print("|---|---|")
        for shape in args.shapes:
            lo, hi = by[(shape, sizes[0])], by[(shape, sizes[-1])]
            ratio = (hi["run_s"] / hi["tasks"]) / (lo["run_s"] / lo["tasks"])
            print(f"| {shape} | {ratio:.2f}x |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
