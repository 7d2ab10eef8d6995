"""Result caching at N = 10,000 trivial tasks on the SQLite file: what a miss adds, what a hit saves.

    python bench/cache.py [--n 10000] [--repeat 3]

Each measurement runs in its own process: the same flat tree (a root and N trivial children) is
run three times on one store: uncached (caching off), a first cached run (every task a miss: keys
computed, results written to the cache table) and a second cached run (every task a hit). Reported:
µs per task for each, the miss's extra cost over uncached, and the hit run's speed-up over uncached.
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


def child(n: int) -> None:
    """One measurement in this process; prints a JSON line."""
    import asyncio

    workdir = tempfile.TemporaryDirectory(prefix="apflow-bench-cache-", ignore_cleanup_errors=True)
    os.chdir(workdir.name)
    from apflow_nb import TaskManager, create_session, executor_register

    @executor_register
    async def plain(i: int) -> dict:
        return {"i": i}

    @executor_register(cache=True)
    async def cached(i: int) -> dict:
        return {"i": i}

    def specs(name: str) -> list[dict]:
        return [{"id": "root", "name": "aggregate_results_executor"}] + [
            {"id": f"t{i}", "name": name, "parent_id": "root", "inputs": {"i": i}} for i in range(n)]

    async def timed(manager: TaskManager, name: str) -> float:
        root = await manager.task_repository.create_task_tree_from_array(specs(name))
        t0 = time.perf_counter()
        await manager.distribute_task_tree(root)
        took = time.perf_counter() - t0
        assert root.tree_status == "completed"
        return took

    async def main() -> dict:
        manager = TaskManager(create_session())
        uncached = await timed(manager, "plain")
        miss = await timed(manager, "cached")
        hit = await timed(manager, "cached")
        return {"uncached_s": uncached, "miss_s": miss, "hit_s": hit}

    try:
        out = asyncio.run(main())
    finally:
        from apflow_nb.core.storage.session import dispose_engines

        dispose_engines()
        os.chdir(tempfile.gettempdir())
        workdir.cleanup()
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="processes; the fastest of each column is reported")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    rows = []
    for _ in range(args.repeat):
        proc = subprocess.run([sys.executable, __file__, "--child", str(args.n)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"cache benchmark failed:\n{proc.stderr}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = {k: min(r[k] for r in rows) for k in rows[0]}
    per = {k: 1e6 * v / (args.n + 1) for k, v in best.items()}
    print(f"apflow_nb cache benchmark: Python {platform.python_version()}, {os.cpu_count()} cores, SQLite file, "
          f"flat tree of {args.n} trivial tasks, best of {args.repeat}")
    print("| run | µs per task | vs uncached |")
    print("|---|---|---|")
    print(f"| uncached (caching off) | {per['uncached_s']:.1f} | 1.00x |")
    print(f"| first cached run (every task a miss) | {per['miss_s']:.1f} | "
          f"+{per['miss_s'] - per['uncached_s']:.1f} µs per task |")
    print(f"| second cached run (every task a hit) | {per['hit_s']:.1f} | "
          f"{per['uncached_s'] / per['hit_s']:.2f}x faster |")


if __name__ == "__main__":
    main()
