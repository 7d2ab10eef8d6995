"""The peers' side of bench/peers_worker.py: the same trees through Dask, Prefect 3 and Hamilton.

Loaded only by bench/peers_worker.py, in the peer's own venv (bench/.venv-peers-*); nothing here is imported
by apflow_nb and nothing of the peers is copied into it. Each function gets the worker's ``Cell`` (which
times setup, create and run) and builds bench/core.py's tree with ``peer_graph``; every task runs the
worker's ``work`` (count, return a small dict) and the fan-in aggregator its ``aggregate``.
"""
from __future__ import annotations

import importlib.metadata
import os
import sys
import types
from typing import Any

from peers_worker import Cell, aggregate, peer_graph, work


# -- Dask ----------------------------------------------------------------------------------------------------
def build_delayed(shape: str, n: int) -> list[Any]:
    """The tree as dask.delayed calls; returns the outputs to compute (every task is upstream of one)."""
    from dask import delayed

    task = delayed(work, pure=False)
    agg = delayed(aggregate, pure=False)
    made: dict[str, Any] = {}
    for tid, deps in peer_graph(shape, n):
        fn = agg if shape == "fanin" and tid == "root" else task
        made[tid] = fn(*[made[d] for d in deps])
    if shape == "flat":
        return list(made.values())
    return [made["root"]] if shape == "fanin" else [made[f"t{n - 1}"]]


def check_outputs(cell: Cell, shape: str, n: int, values: tuple | list | dict) -> None:
    """The engine handed back what the tree computes."""
    values = list(values.values()) if isinstance(values, dict) else list(values)
    checks = {"outputs": all(isinstance(v, dict) for v in values)}
    if shape == "fanin":
        checks["aggregated_all"] = values[-1].get("result_count") == n
    cell.out["checks"] = checks


def dask_local(cell: Cell, shape: str, n: int, scheduler: str) -> None:
    """dask.delayed graph, computed with the single-threaded ("sync") or the threaded scheduler."""
    import dask

    cell.setup_done(f"dask {dask.__version__}")
    outputs = build_delayed(shape, n)
    cell.created()
    values = dask.compute(*outputs, scheduler=scheduler)
    cell.ran()
    check_outputs(cell, shape, n, values)


def dask_distributed(cell: Cell, shape: str, n: int) -> None:
    """dask.delayed graph on distributed's in-process LocalCluster (processes=False, no dashboard)."""
    import dask
    import distributed

    with distributed.LocalCluster(processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        workers = len(cluster.workers)
        cell.setup_done(f"dask/distributed {distributed.__version__} ({workers} in-process worker)")
        outputs = build_delayed(shape, n)
        cell.created()
        values = dask.compute(*outputs)  # the active Client is the scheduler
        cell.ran()
        check_outputs(cell, shape, n, values)
        client.cancel(outputs)


# -- Prefect 3 ----------------------------------------------------------------------------------------------
def prefect(cell: Cell, shape: str, n: int) -> None:
    """A Prefect 3 flow calling the trivial task: submitted to its default ThreadPoolTaskRunner (flat, fan-in:
    the aggregator takes the futures) or called in turn, each on the previous result (chain). The API is the
    local ephemeral server Prefect starts by itself, on its SQLite database under PREFECT_HOME (set by the
    parent to a fresh temp dir). Setup runs one empty flow first: server start and database migrations."""
    from prefect import flow, task

    noop = task(work, name="noop")
    agg = task(aggregate, name="aggregate")

    @flow
    def warm_up() -> int:
        return 0

    @flow
    def run_tree(graph: list[tuple[str, list[str]]]) -> list[Any]:
        if shape == "chain":
            value = None
            for _tid, deps in graph:
                value = noop(value) if deps else noop()
            return [value]
        futures: dict[str, Any] = {}
        for tid, deps in graph:
            fn = agg if shape == "fanin" and tid == "root" else noop
            futures[tid] = fn.submit(*[futures[d] for d in deps])
        ends = list(futures.values()) if shape == "flat" else [futures["root"]]
        return [f.result() for f in ends]

    warm_up()
    cell.setup_done(f"prefect {importlib.metadata.version('prefect')}")
    graph = peer_graph(shape, n)
    cell.created()
    values = run_tree(graph)
    cell.ran()
    check_outputs(cell, shape, n, values)
    prefect_stored(cell, len(graph))


def prefect_stored(cell: Cell, expected: int, wait: float = 60.0) -> None:
    """How many task runs Prefect's database holds as COMPLETED when the flow returns, and how long it takes
    until all are there (it records them asynchronously from events); not part of the timed figures."""
    import sqlite3
    import time
    from pathlib import Path

    path = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser() / "prefect.db"

    def completed() -> int:
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
                return db.execute("SELECT count(*) FROM task_run WHERE state_type = 'COMPLETED'").fetchone()[0]
        except sqlite3.Error:
            return -1

    t0 = time.perf_counter()
    cell.out["stored_at_return"] = count = completed()
    while count < expected and time.perf_counter() - t0 < wait:
        time.sleep(0.25)
        count = completed()
    cell.out["stored_final"] = count
    cell.out["stored_after_s"] = round(time.perf_counter() - t0, 2)
    cell.out["stored_expected"] = expected


# -- Hamilton ----------------------------------------------------------------------------------------------
def hamilton_module(shape: str, n: int) -> types.ModuleType:
    """A module built at run time: one function per task, its parameters named after its dependencies."""
    lines = []
    for tid, deps in peer_graph(shape, n):
        params = ", ".join(f"{d}: dict" for d in deps)
        body = f"_aggregate({', '.join(deps)})" if shape == "fanin" and tid == "root" else f"_work({', '.join(deps)})"
        lines.append(f"def {tid}({params}) -> dict:\n    return {body}\n")
    name = f"peers_hamilton_{shape}_{n}"
    module = types.ModuleType(name)
    module.__dict__.update(_work=work, _aggregate=aggregate)
    sys.modules[name] = module  # Hamilton keeps the functions whose module is this one
    exec(compile("\n".join(lines), name, "exec"), module.__dict__)
    return module


def hamilton(cell: Cell, shape: str, n: int) -> None:
    """Hamilton (sf-hamilton): a Driver over the generated module, dict results, execute() on the outputs."""
    os.environ["HAMILTON_TELEMETRY_ENABLED"] = "false"
    from hamilton import base, driver

    cell.setup_done(f"sf-hamilton {importlib.metadata.version('sf-hamilton')}")
    module = hamilton_module(shape, n)
    dr = driver.Builder().with_modules(module).with_adapters(base.DictResult()).build()
    finals = [tid for tid, _ in peer_graph(shape, n)] if shape == "flat" else \
        ["root" if shape == "fanin" else f"t{n - 1}"]
    cell.created()
    values = dr.execute(finals)
    cell.ran()
    check_outputs(cell, shape, n, values)
