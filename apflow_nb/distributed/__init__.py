"""Run task trees on Dask workers: the orchestration stays here, executors run on the cluster.

``TaskManager(db, runner=client)`` or ``apflow_nb.run(tree, runner=client)`` with a
``distributed.Client`` (or a scheduler address).
"""
from apflow_nb.distributed.dask_runner import DaskRunner

__all__ = ["DaskRunner"]
