"""``apflow_nb.run(tree)``: start a run, get a handle at once, watch it live.

Inside a running loop (Jupyter) the run is scheduled as a task on that loop, so its view keeps
updating while the kernel is idle and while other cells run. ``await run`` gives the final tree.
Outside a loop (a script) the run starts when you call ``run.result()`` (or ``await run``).
"""
from __future__ import annotations

import asyncio
import collections
from typing import Any

from apflow_nb.core.errors import NestedLoopError
from apflow_nb.core.events import Event, default_bus
from apflow_nb.core.types import TaskTreeNode
from apflow_nb.notebook.display import resolve_mode
from apflow_nb.notebook.loop import nested_allowed
from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views.live import LiveView


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def as_tree(tree: Any, manager: Any, user_id: str | None = None) -> TaskTreeNode:
    """A TaskTreeNode from a node, a stored root task (its stored tree), or a task array (stored now,
    after every check: nothing is written when a check fails)."""
    if isinstance(tree, TaskTreeNode):
        return tree
    if isinstance(tree, (list, tuple)):
        from apflow_nb.core.execution.task_array import create_task_tree_from_array

        return create_task_tree_from_array(manager.task_repository, list(tree), user_id=user_id,
                                           validate_executors=True)
    if hasattr(tree, "id") and hasattr(tree, "name"):
        return manager.task_repository.get_task_tree_sync(tree.id)
    if isinstance(tree, str):
        return manager.task_repository.get_task_tree_sync(tree)
    raise TypeError(f"run() takes a TaskTreeNode, a root task, a root task id or a task array (list of dicts), "
                    f"not {type(tree).__name__}")


class Run:
    """A handle on one run: ``await run``, ``run.cancel()``, ``run.done()``, ``run.status``, ``run.view``."""

    def __init__(self, tree: TaskTreeNode, manager: Any, *, display: Any = True, max_rows: int = 100,
                 keep_events: int = 10_000):
        self.tree = tree
        self.manager = manager
        self.root_id: str = tree.task.id
        self.state = RunState.from_tree(tree)
        self.events: collections.deque[Event] = collections.deque(maxlen=keep_events)
        mode = resolve_mode(display)
        self.view: LiveView | None = None
        if mode != "none":
            self.view = LiveView(self.state, mode=mode, on_cancel=self._cancel_from_view, max_rows=max_rows)
        bus = getattr(manager, "events", None) or default_bus
        self._subscription = bus.subscribe(self._on_event, root_id=self.root_id)
        self._task: asyncio.Task[TaskTreeNode] | None = None
        if self.view is not None:
            self.view.show()
        if _running_loop() is not None:
            self._start()

    # -- running ------------------------------------------------------------------------------
    def _start(self) -> asyncio.Task[TaskTreeNode]:
        if self._task is None:
            self._task = asyncio.ensure_future(self._main())
        return self._task

    async def _main(self) -> TaskTreeNode:
        try:
            return await self.manager.distribute_task_tree(self.tree)
        finally:
            self._subscription.close()
            for event in self._subscription.drain_nowait():  # anything not yet delivered
                self._on_event(event)
            if self.view is not None:
                self.view.draw(final=True)

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        if self.view is not None:
            self.view.on_event(event)
        else:
            self.state.apply(event)

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._wait().__await__()

    async def _wait(self) -> TaskTreeNode:
        task = self._start()
        try:
            return await asyncio.shield(task)
        except BaseException:
            # the awaiting cell was interrupted (Ctrl-C, kernel interrupt): cancel the run cleanly
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=self.manager.cancel_grace_period + 2)
            raise
        finally:
            if self.view is not None:
                self.view.sync()

    def result(self, timeout: float | None = None) -> TaskTreeNode:
        """Block until the run ends and return its root node.

        Outside an event loop this runs the tree. Inside a running loop (Jupyter) blocking would
        deadlock, so it raises NestedLoopError unless ``apflow_nb.allow_nested_loop()`` was called.
        """
        if self._task is not None and self._task.done():
            return self._task.result()
        loop = _running_loop()
        if loop is None:
            return asyncio.run(asyncio.wait_for(self._wait(), timeout))
        if not nested_allowed():
            raise NestedLoopError(
                "run.result() would block the event loop this run needs (you are inside Jupyter or another "
                "running loop). Use `await run` instead, or opt in to nested loops with "
                "apflow_nb.allow_nested_loop() first.")
        return loop.run_until_complete(asyncio.wait_for(self._wait(), timeout))

    # -- controlling and reading --------------------------------------------------------------------
    def cancel(self, task_id: str | None = None) -> Any:
        """Cancel the whole run (or one task of it); returns the scheduled cancel."""
        if self._task is None and task_id is None:
            self._subscription.close()
            return None
        return self.manager.request_cancel(task_id or self.root_id)

    def _cancel_from_view(self, task_id: str | None) -> None:
        self.cancel(task_id)

    def done(self) -> bool:
        """True once every task reached a final state (or the run was torn down)."""
        return self._task is not None and self._task.done()

    @property
    def status(self) -> str:
        """The run's status: pending, in_progress, completed, failed or cancelled."""
        if self.done():
            return self.tree.tree_status
        return self.state.status

    def frame(self, flatten: bool = True) -> Any:
        """The run's tasks as a DataFrame in tree order (``apflow_nb.history(root_id=...)``)."""
        from apflow_nb.analysis import history

        return history(self.manager.db, root_id=self.root_id, flatten=flatten)

    def __repr__(self) -> str:
        return f"<Run {self.root_id[:8]} {self.state.summary()}>"


def run(tree: Any, *, session: Any = None, manager: Any = None, store: str | None = None, display: Any = True,
        max_concurrency: int | None = None, user_id: str | None = None, runner: Any = None,
        max_rows: int = 100) -> Run:
    """Start running ``tree`` and return a Run handle at once.

    ``tree``: a TaskTreeNode, a stored root task (or its id), or a task array (list of task dicts,
    checked and stored first). ``display``: True (the best view here: widget, HTML or a text line),
    False, or "widget" / "html" / "text". The store is ``session``'s, ``manager``'s, ``store``
    (a URL) or the default. ``runner``: a Dask client to run executors on a cluster.
    """
    if manager is None:
        from apflow_nb.core.execution.task_manager import TaskManager
        from apflow_nb.core.storage.session import create_session

        manager = TaskManager(session or create_session(store), max_concurrency=max_concurrency, runner=runner)
    node = as_tree(tree, manager, user_id)
    return Run(node, manager, display=display, max_rows=max_rows)
