"""``apflow_nb.run(tree)``: start a run, get a handle at once, watch it live.

Inside a running loop (Jupyter) the run is scheduled as a task on that loop right away, so its
view keeps updating while the kernel is idle and while other cells run; ``await run`` gives the
final tree. Outside a loop (a script) nothing runs until you ask: ``run.result()`` runs the tree
to the end (``asyncio.run``) and returns it, as does ``await run`` inside your own
``asyncio.run(...)``. Blocking with ``run.result()`` inside a running loop raises
NestedLoopError, unless you opted in with ``apflow_nb.allow_nested_loop()``.

Interrupting the cell (or script) that awaits a run cancels the run: every unfinished task ends
cancelled, none is left in_progress.
"""
from __future__ import annotations

import asyncio
import collections
from typing import Any

from apflow_nb.core.errors import NestedLoopError
from apflow_nb.core.events import Event, default_bus
from apflow_nb.core.types import TaskTreeNode
from apflow_nb.notebook._magic_cell import install_cell_names
from apflow_nb.notebook.display import resolve_mode
from apflow_nb.notebook.loop import nested_allowed
from apflow_nb.notebook.progress import RunState
from apflow_nb.notebook.views.live import LiveView

NESTED_HELP = ("run.result() would block the event loop this run needs (you are inside Jupyter or another "
               "running loop). Use `await run` instead, or opt in to nested loops with "
               "apflow_nb.allow_nested_loop() first.")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _as_runner(runner: Any) -> Any:
    """A Dask client or scheduler address becomes a DaskRunner; a Runner (or None) stays as it is."""
    if runner is None or type(runner).__module__.split(".")[0] != "distributed" and not isinstance(runner, str):
        return runner
    from apflow_nb.distributed import DaskRunner

    return DaskRunner.from_client(runner)


def as_tree(tree: Any, manager: Any, user_id: str | None = None, confirm: bool = True) -> TaskTreeNode:
    """A TaskTreeNode from a node, a stored root task or its id (its stored tree), or a task array
    (checked, executors included, then stored: nothing is written when a check fails).

    A stored tree someone else stored (another ``user_id``, or last run by another process) is
    announced first: one line naming its executors and counts (``confirm=False``: no notice).
    """
    if isinstance(tree, TaskTreeNode):
        return tree
    if isinstance(tree, (list, tuple)):
        from apflow_nb.core.storage.task_array import create_task_tree_from_array

        return create_task_tree_from_array(manager.task_repository, list(tree), user_id=user_id,
                                           validate_executors=True)
    if isinstance(tree, str) or (hasattr(tree, "id") and hasattr(tree, "name")):
        node = manager.task_repository.get_task_tree_sync(tree if isinstance(tree, str) else tree.id)
        notice = foreign_tree_notice(node, user_id) if confirm else None
        if notice:
            print(notice)
        return node
    raise TypeError(f"run() takes a TaskTreeNode, a root task, a root task id or a task array (list of dicts), "
                    f"not {type(tree).__name__}")


def foreign_tree_notice(node: TaskTreeNode, user_id: str | None) -> str | None:
    """One line saying what a stored tree will run, when someone else stored it; None when it is ours.

    Someone else: a task's ``user_id`` is set and differs from ``user_id``, or a task was last run
    by another process (its ``owner``). ``user_id`` is a label, not a proof of identity.
    """
    import collections as _collections

    from apflow_nb.core.storage.processes import process_identity
    from apflow_nb.core.types import executor_id_of

    tasks = [n.task for n in node.walk()]
    users = sorted({str(t.user_id) for t in tasks if t.user_id and t.user_id != user_id})
    me = process_identity()
    owners = sorted({str(t.owner) for t in tasks if getattr(t, "owner", None) and t.owner != me})
    if not users and not owners:
        return None
    counts = _collections.Counter(executor_id_of(t) for t in tasks)
    runs = ", ".join(f"{executor} x{n}" for executor, n in sorted(counts.items()))
    who = []
    if users:
        who.append(f"user_id {', '.join(map(repr, users))}")
    if owners:
        who.append(f"last run by process {', '.join(owners)}")
    root = getattr(node.task, "key", None) or node.task.id
    return (f"apflow_nb: running stored tree {root!r} from {' and '.join(who)}: {len(tasks)} task(s) will run "
            f"these executors: {runs} (confirm=False hides this notice)")


class Run:
    """A handle on one run: ``await run``, ``run.result()``, ``run.cancel()``, ``run.done()``,
    ``run.status``, ``run.events``, ``run.view``, ``run.state``, ``run.root_id``, ``run.frame()``."""

    def __init__(self, tree: TaskTreeNode, manager: Any, *, display: Any = True, max_rows: int = 100,
                 keep_events: int = 10_000, view: str = "table"):
        self.tree = tree
        self.manager = manager
        self.root_id: str = tree.task.id
        self.state = RunState.from_tree(tree)
        self.state.grace = float(getattr(manager, "cancel_grace_period", 3.0))
        self._events: collections.deque[Event] = collections.deque(maxlen=keep_events)
        mode = resolve_mode(display)
        self.view: LiveView | None = None
        if mode != "none":
            self.view = LiveView(self.state, mode=mode, on_cancel=self.cancel, max_rows=max_rows, tree=tree,
                                 view=view)
        bus = getattr(manager, "events", None) or default_bus
        self._subscription = bus.subscribe(self._on_event, root_id=self.root_id)
        self._task: asyncio.Task[TaskTreeNode] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outcome: TaskTreeNode | None = None  # set when cancelled before it ever started
        if self.view is not None:
            self.view.show()
        install_cell_names()
        if _running_loop() is not None:
            self._start()

    # -- running ------------------------------------------------------------------------------
    def _start(self) -> asyncio.Task[TaskTreeNode]:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._main(), name=f"apflow run {self.root_id[:8]}")
        return self._task

    async def _main(self) -> TaskTreeNode:
        error: Exception | None = None
        try:
            return await self.manager.distribute_task_tree(self.tree)
        except Exception as exc:  # the run could not run at all (e.g. this tree is already running)
            error = exc
            raise
        finally:
            self._subscription.close()
            for event in self._subscription.drain_nowait():  # anything not yet delivered
                self._on_event(event)
            if error is not None:
                self.state.fail(f"{type(error).__name__}: {error}")
            if self.view is not None:
                self.view.draw(final=True)

    def _on_event(self, event: Event) -> None:
        self._events.append(event)
        if self.view is not None:
            self.view.on_event(event)
        else:
            self.state.apply(event)

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._wait().__await__()

    async def _wait(self) -> TaskTreeNode:
        if self._outcome is not None:
            return self._outcome
        task = self._start()
        try:
            return await asyncio.shield(task)
        except BaseException:
            # the awaiting cell was interrupted (Ctrl-C, kernel interrupt): cancel the run cleanly
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=getattr(self.manager, "cancel_grace_period", 3.0) + 2)
            raise
        finally:
            if self.view is not None:
                self.view.sync()  # from the awaiting cell, so a saved notebook keeps the final frame

    def result(self, timeout: float | None = None) -> TaskTreeNode:
        """Block until the run ends and return its root node (raises what the run raised).

        Outside an event loop this runs the tree (``timeout`` seconds at most; then the run is
        cancelled and TimeoutError raised). Inside a running loop (Jupyter) blocking would
        deadlock, so it raises NestedLoopError unless ``apflow_nb.allow_nested_loop()`` was called.
        """
        if self._outcome is not None:
            return self._outcome
        if self._task is not None and self._task.done():
            return self._task.result()
        loop = _running_loop()
        if loop is None and self._loop is not None and self._loop.is_running():
            # another thread, while the run goes on in its loop (a kernel's): wait for it there
            return asyncio.run_coroutine_threadsafe(asyncio.wait_for(self._wait(), timeout), self._loop).result()
        if loop is None:
            return asyncio.run(asyncio.wait_for(self._wait(), timeout))
        if not nested_allowed():
            raise NestedLoopError(NESTED_HELP)
        return loop.run_until_complete(asyncio.wait_for(self._wait(), timeout))

    # -- controlling and reading --------------------------------------------------------------
    def cancel(self, task_id: str | None = None) -> Any:
        """Cancel the whole run (or one task of it, by id or by the key you wrote). Returns the
        scheduled cancel (an asyncio task, or a concurrent future when called from another thread),
        None when there was nothing left to cancel. Safe to call from any thread and before the
        run started. The view shows "cancelling…" until the tasks really stop."""
        if self.done():
            return None
        if task_id is not None:
            task_id = self._task_id(task_id)
        if self._task is None and _running_loop() is not None:
            self._start()  # made outside a loop, cancelled inside one: start it, the cancel follows
        if self._task is None:  # a script that has not started the run: cancel it in the store now
            return self._cancel_unstarted(task_id)
        self.state.ask_cancel(task_id)
        if self.view is not None:
            self.view.changed()
        # cancel_tree / cancel_task look the run up when they execute, so a cancel asked in the
        # same cell as run() (before the run's first step) still cancels the whole tree
        coro = (self.manager.cancel_tree(self.root_id) if task_id is None else self.manager.cancel_task(task_id))
        loop, here = self._loop, _running_loop()
        if loop is not None and here is not loop and loop.is_running():
            return asyncio.run_coroutine_threadsafe(coro, loop)  # from another thread
        if here is None:  # the run's loop is gone (its asyncio.run ended): nothing runs any more
            coro.close()
            return None
        return asyncio.ensure_future(coro)

    def _task_id(self, task_id: str) -> str:
        """A task's stored id from its id or its key (the id you wrote: stored ids may carry a run tag)."""
        if task_id in self.state.rows:
            return task_id
        return next((r.id for r in self.state.rows.values() if r.key == task_id), task_id)

    def _cancel_unstarted(self, task_id: str | None) -> Any:
        if task_id is not None:
            return asyncio.run(self.manager.cancel_task(task_id))
        asyncio.run(self.manager.cancel_tree(self.root_id))
        self._subscription.close()
        for event in self._subscription.drain_nowait():
            self._on_event(event)
        self._outcome = self.manager.task_repository.get_task_tree_sync(self.root_id)
        self.state.finish()  # no tree_finished for a tree cancelled in the store: the tasks' events decide
        if self.view is not None:
            self.view.draw(final=True)
        return None

    def done(self) -> bool:
        """True once the run ended (every task final, or the run was torn down or cancelled)."""
        return self._outcome is not None or (self._task is not None and self._task.done())

    @property
    def status(self) -> str:
        """The run's status: pending, in_progress, completed, failed or cancelled.

        Read from the run's event-built state only (the same state the view draws), never from
        the task rows the engine mutates."""
        return self.state.status

    @property
    def events(self) -> list[Event]:
        """The events this run's view saw, oldest first (the last ``keep_events``; a task's
        progress events may arrive coalesced when they come faster than the loop delivers)."""
        return list(self._events)

    @property
    def run_id(self) -> str:
        """This run's id: its root task's stored id (``history(root_id=run.run_id)`` finds exactly this run)."""
        return self.root_id

    def frame(self, flatten: bool = True) -> Any:
        """The run's tasks as a DataFrame in tree order (``apflow_nb.history(root_id=...)``)."""
        from apflow_nb.analysis import history

        return history(self.manager, root_id=self.root_id, flatten=flatten)

    def __repr__(self) -> str:
        root = self.state.rows.get(self.root_id)
        return f"<Run {root.key if root is not None else self.root_id} {self.state.summary()}>"


def run(tree: Any, *, session: Any = None, manager: Any = None, store: str | None = None, display: Any = True,
        max_concurrency: int | None = None, user_id: str | None = None, runner: Any = None,
        max_rows: int = 100, view: str = "table", confirm: bool = True, cache: bool | None = None) -> Run:
    """Start running ``tree`` and return a Run handle at once.

    ``tree``: a TaskTreeNode, a stored root task (or its id), or a task array (list of task dicts,
    checked and stored first). ``display``: True or "auto" (the best view here: a widget in a
    kernel with ipywidgets, else updatable HTML; a text line in a terminal or script), False, or
    "widget" / "html" / "text" (``APFLOW_NB_DISPLAY`` overrides the automatic choice).
    The store is ``manager``'s, ``session``'s, ``store`` (a URL) or the default
    (``./.apflow/tasks.db``). ``runner``: a Dask client to run executors on a cluster.
    ``max_rows``: rows the view draws at most (running and failed tasks first). ``view``: the face
    the view starts on, "table" or "graph" (the dependency graph; a toggle switches them).
    ``confirm``: a stored tree someone else stored is announced before it runs (executor ids and
    counts); False skips that notice. ``cache=True`` caches every task's result unless its task or its
    executor says otherwise (with ``manager``, the manager's own setting applies for this run too).
    """
    from apflow_nb.notebook.graph._faces import check_view

    check_view(view)
    if manager is None:
        from apflow_nb.core.execution.task_manager import TaskManager
        from apflow_nb.core.storage.session import create_session

        manager = TaskManager(session or create_session(store), max_concurrency=max_concurrency,
                              runner=_as_runner(runner), cache=bool(cache))
    elif cache is not None:
        manager.cache = cache
    node = as_tree(tree, manager, user_id, confirm)
    return Run(node, manager, display=display, max_rows=max_rows, view=view)
