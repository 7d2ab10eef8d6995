"""200 CPU-bound tasks (about 50 ms each): the local runner vs 2 Dask worker processes.

    python bench/scale_out.py [--tasks 200] [--ms 50]

Prints wall time for each and the ratio. The local runner runs executors on the event loop in
one process (CPU-bound work runs one task at a time); the Dask runner ships each executor to a
LocalCluster of 2 single-threaded worker processes while orchestration stays here.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time


def spin(ms: float) -> int:
    """Pure-Python CPU work for about ``ms`` milliseconds (calibrated), returning a checksum."""
    end = time.perf_counter() + ms / 1000
    x = 0
    while time.perf_counter() < end:
        for i in range(1000):
            x = (x * 31 + i) % 1_000_003
    return x


async def run_tree(runner, n: int, ms: float, url: str) -> float:
    from apflow_nb import ExecutableTask, TaskManager, TaskTreeNode, create_session, executor_register

    class Cpu(ExecutableTask):
        id = "cpu"

        async def execute(self, inputs):
            return {"checksum": spin(inputs["ms"]), "pid": os.getpid()}

    executor_register(Cpu)
    manager = TaskManager(create_session(url), runner=runner)
    specs = [{"id": "root", "name": "aggregate_results_executor", "dependencies": [f"c{i}" for i in range(n)]}]
    specs += [{"id": f"c{i}", "name": "cpu", "parent_id": "root", "inputs": {"ms": ms}} for i in range(n)]
    tasks = manager.task_repository.create_tasks(specs)
    root = TaskTreeNode(tasks[0])
    for t in tasks[1:]:
        root.add_child(t)
    t0 = time.perf_counter()
    await manager.distribute_task_tree(root)
    elapsed = time.perf_counter() - t0
    assert root.tree_status == "completed", root.tree_status
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--ms", type=float, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import dask
    from distributed import Client, LocalCluster

    tmp_dir = tempfile.TemporaryDirectory(prefix="apflow-dask-bench-", ignore_cleanup_errors=True)  # removed at exit
    tmp = tmp_dir.name
    local = asyncio.run(run_tree(None, args.tasks, args.ms, f"sqlite:///{tmp}/local.db"))
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        client.run(lambda: None)  # workers up and warm
        try:
            from apflow_nb.distributed import DaskRunner

            remote = asyncio.run(run_tree(DaskRunner.from_client(client), args.tasks, args.ms,
                                          f"sqlite:///{tmp}/dask.db"))
        finally:
            client.close()
            cluster.close()
    print(f"Dask runner benchmark: Python {platform.python_version()}, {os.cpu_count()} cores; "
          f"{args.tasks} CPU-bound tasks of ~{args.ms:g} ms")
    print("| runner | wall s | per task ms | speed-up |")
    print("|---|---|---|---|")
    print(f"| local (event loop, 1 process) | {local:.2f} | {1000 * local / args.tasks:.1f} | 1.00x |")
    print(f"| Dask LocalCluster, {args.workers} worker processes | {remote:.2f} | {1000 * remote / args.tasks:.1f} | "
          f"{local / remote:.2f}x |")


if __name__ == "__main__":
    main()
