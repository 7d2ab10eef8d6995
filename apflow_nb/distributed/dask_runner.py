"""DaskRunner: each ready task's executor runs on a Dask worker.

- Executors travel by value (cloudpickle), so classes defined in notebook cells work on workers.
- Executor events come back through Dask's structured events (``Worker.log_event`` ->
  ``Client.subscribe_topic``), coalesced on the worker to ten progress messages a second per task,
  and enter the notebook's event stream like local ones.
- Cancellation sets a ``distributed.Event`` the worker watches: the executor's
  ``cancellation_checker()`` turns true there and its ``cancel()`` is awaited there, on the worker's copy
  (where the work and its resources are); the manager also awaits the notebook's copy's ``cancel()``,
  as for a local task, for the result it records.
- A worker that dies while running a task fails the task with an error saying so; the rest of
  the tree goes on under the usual dependency rules.
"""
from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

from apflow_nb.core.execution.runner import ExecutionContext

_LOCAL_ONLY = ("event_queue", "cancellation_checker", "task")


class WorkerDiedError(RuntimeError):
    """The Dask worker running a task died before the task finished."""


class DaskRunner:
    """Run executors on the cluster of ``client`` (a ``distributed.Client``, sync or asynchronous,
    or a scheduler address to connect to)."""

    def __init__(self, client: Any):
        try:
            import distributed
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("DaskRunner needs Dask's distributed scheduler: "
                              "pip install 'apflow_nb[dask]'") from exc
        if isinstance(client, str):
            client = distributed.Client(client)
        if not isinstance(client, distributed.Client):
            raise TypeError(f"DaskRunner expects a distributed.Client or a scheduler address, got {client!r}")
        self.client = client
        self.topic = f"apflow_nb-events-{uuid.uuid4().hex[:12]}"
        self._contexts: dict[str, ExecutionContext] = {}
        self._subscribed = False

    @classmethod
    def from_client(cls, client: Any) -> "DaskRunner":
        """A runner on ``client`` (a ``distributed.Client``, sync or asynchronous, or a scheduler address)."""
        return cls(client)

    @property
    def asynchronous(self) -> bool:
        return bool(getattr(self.client, "asynchronous", False))

    def check_store(self, url: str) -> None:
        """Refuse an in-memory store: a cluster run outlives nothing it cannot find again."""
        if url.startswith("sqlite") and (url.rstrip("/") in ("sqlite:", "sqlite:/", "sqlite://")
                                         or ":memory:" in url):
            raise ValueError(
                "DaskRunner cannot use an in-memory store: task state must survive the notebook and be "
                "readable by everyone watching the cluster. Use a PostgreSQL URL "
                "(create_session('postgresql://...')) or, on one machine, a SQLite file.")

    # -- events ----------------------------------------------------------------------------
    def _on_event(self, event: Any) -> None:
        _, message = event
        ctx = self._contexts.get(message.get("task_id"))
        if ctx is not None and ctx.loop is not None:
            ctx.loop.call_soon_threadsafe(ctx.publish, message.get("item"))

    async def _ensure_subscribed(self) -> None:
        if self._subscribed:
            return
        self._subscribed = True
        out = self.client.subscribe_topic(self.topic, self._on_event)
        if asyncio.iscoroutine(out) or isinstance(out, asyncio.Future):
            await out

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a client method: awaited on an asynchronous client, in a thread on a sync one."""
        if self.asynchronous:
            out = fn(*args, **kwargs)
            return await out if hasattr(out, "__await__") else out
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- running -----------------------------------------------------------------------------
    async def run(self, executor: Any, inputs: dict[str, Any], context: ExecutionContext) -> Any:
        import cloudpickle
        from distributed import Event
        from distributed.client import FutureCancelledError
        from distributed.scheduler import KilledWorker

        await self._ensure_subscribed()
        remote = copy.copy(executor)
        for name in _LOCAL_ONLY:
            if name in vars(remote):
                delattr(remote, name)
        _ship_by_value(type(remote))
        payload = cloudpickle.dumps(remote)
        cancel_name = f"apflow-cancel-{context.task_id}-{uuid.uuid4().hex[:8]}"
        key = f"apflow-{context.executor_id}-{context.task_id}-{uuid.uuid4().hex[:6]}"
        from apflow_nb.distributed._remote import execute_on_worker

        self._contexts[context.task_id] = context
        future = self.client.submit(execute_on_worker, payload, inputs, context.task_id, self.topic, cancel_name,
                                    key=key, pure=False, retries=0)
        cancel_event = Event(cancel_name, client=self.client)

        async def forward_cancel() -> None:
            await context.cancel_requested.wait()
            await self._call(cancel_event.set)

        forwarder = asyncio.ensure_future(forward_cancel())
        try:
            if self.asynchronous:
                return await future
            return await asyncio.to_thread(future.result)
        except KilledWorker as exc:
            raise WorkerDiedError(f"the Dask worker running task {context.task_id} died ({exc}); "
                                  f"the task did not finish") from None
        except FutureCancelledError:
            raise WorkerDiedError(f"Dask cancelled the task {context.task_id} (its worker or the scheduler "
                                  f"went away)") from None
        except asyncio.CancelledError:
            await asyncio.shield(self._call(self.client.cancel, future))
            raise
        finally:
            forwarder.cancel()
            self._contexts.pop(context.task_id, None)


def _ship_by_value(cls: type) -> None:
    """Executors from notebook cells (``__main__``) travel by value anyway; do the same for classes
    from the user's own modules outside site-packages, which workers may not be able to import."""
    import sys
    import sysconfig

    import cloudpickle

    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if module is None or path is None or cls.__module__ == "__main__" or cls.__module__.startswith("apflow_nb"):
        return
    roots = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib")}
    if not any(path.startswith(root) for root in roots):
        try:
            cloudpickle.register_pickle_by_value(module)
        except ValueError:
            pass
