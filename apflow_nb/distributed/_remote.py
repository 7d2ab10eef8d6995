"""What runs on a Dask worker for one task: the executor, its event queue, its cancel flag.

Kept free of apflow_nb's store and manager: a worker needs only the pickled executor, the
inputs, and two names (the event topic and the cancel Event).
"""
from __future__ import annotations

import asyncio
import inspect
import threading
import time
from typing import Any

PROGRESS_INTERVAL = 0.1  # at most ten progress messages a second per task leave a worker


class _WorkerEventQueue:
    """``event_queue`` on a worker: sends dicts to the notebook through Dask's structured events."""

    def __init__(self, worker: Any, topic: str, task_id: str):
        self._worker = worker
        self._topic = topic
        self._task_id = task_id
        self._last_progress = 0.0
        self._held: dict[str, Any] | None = None

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        if isinstance(item, dict) and item.get("type") == "progress":
            now = time.monotonic()
            if now - self._last_progress < PROGRESS_INTERVAL:
                self._held = item  # coalesce: only the newest progress of an interval leaves
                return
            self._last_progress = now
            self._held = None
        self._send(item)

    def flush(self) -> None:
        if self._held is not None:
            item, self._held = self._held, None
            self._send(item)

    def _send(self, item: Any) -> None:
        self._worker.log_event(self._topic, {"task_id": self._task_id, "item": item})

    def qsize(self) -> int:
        return 0


async def _call_cancel(executor: Any) -> None:
    """Await the executor's ``cancel()`` (sync or async); its errors stay on the worker, logged."""
    try:
        outcome = executor.cancel()
        if inspect.isawaitable(outcome):
            await outcome
    except Exception:  # the notebook's copy reports cancel() errors; here they must not kill execute()
        import logging

        logging.getLogger("apflow_nb.distributed").exception("apflow_nb: cancel() raised on the worker")


def execute_on_worker(payload: bytes, inputs: dict[str, Any], task_id: str, topic: str, cancel_name: str) -> Any:
    """Unpickle the executor, wire its queue and checker, run ``execute`` to the end, return its result."""
    import cloudpickle
    from distributed import Event, get_client, get_worker

    executor = cloudpickle.loads(payload)
    worker = get_worker()
    cancelled = threading.Event()
    done = threading.Event()
    cancel_event = Event(cancel_name, client=get_client())  # explicit: it is waited on from another thread

    loop_box: list[asyncio.AbstractEventLoop] = []

    def watch() -> None:
        try:
            cancel_event.wait()  # set by the notebook on cancel, or below once the task is done
        except Exception:
            return
        if done.is_set():
            return
        cancelled.set()
        if loop_box:  # the executor's cancel() runs here too, on the worker's copy, where the work is
            try:
                asyncio.run_coroutine_threadsafe(_call_cancel(executor), loop_box[0])
            except RuntimeError:  # the loop already closed: execute() returned meanwhile
                pass

    watcher = threading.Thread(target=watch, name=f"apflow-cancel-{task_id[:8]}", daemon=True)
    watcher.start()
    queue = _WorkerEventQueue(worker, topic, task_id)
    executor.task_id = task_id
    executor.event_queue = queue
    executor.cancellation_checker = cancelled.is_set

    async def main() -> Any:
        loop_box.append(asyncio.get_running_loop())
        if cancelled.is_set():  # cancelled before the loop existed: the watcher could not schedule cancel()
            asyncio.ensure_future(_call_cancel(executor))
        result = executor.execute(inputs)
        if inspect.isawaitable(result):
            result = await result
        return result

    try:
        return asyncio.run(main())
    finally:
        queue.flush()
        done.set()
        try:
            cancel_event.set()  # releases the watcher thread
        except Exception:
            pass
