"""IPython magics: ``%%executor``, ``%%tree`` and ``%apflow`` (``%load_ext apflow_nb``).

Thin: parse the arguments (IPython's ``magic_arguments``), call the public Python API, display.

- ``%%executor [ID] [--run JSON] [--thread] [--quiet]`` runs the cell like any cell and registers
  the executors it defines (see :meth:`ApflowMagics.executor`).
- ``%%tree [--store URL] [--name VAR] [--no-display | --display MODE] [--view table|graph] [--user U]
  [--max-concurrency N]``
  checks the task array in the cell, stores it, runs it with :func:`apflow_nb.run` and shows it live.
- ``%apflow executors | history | cancel ID | show ROOT_ID | watch [ROOT_ID] | store [URL]``.

The kernel's store is ``$APFLOW_NB_DATABASE_URL`` (else ``./.apflow/tasks.db``); ``%apflow store URL``
sets the store of the kernel's process (a setting in memory, never ``os.environ``, so child
processes do not inherit the URL), so ``%%tree``, ``%apflow``, ``apflow_nb.run`` and
``apflow_nb.history`` all use the new store from then on. A URL is only ever shown masked
(``postgresql://ann:***@host/db``), and errors never repeat a password.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import keyword
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from apflow_nb.core.errors import ApflowError
from apflow_nb.core.extensions.registry import RegistryEntry, get_registry
from apflow_nb.notebook._magic_cell import (
    changed_values, defined_classes, defined_functions, install_cell_names, policy_of, remember_source,
    restore_registry, run_cell_code,
)
from apflow_nb.notebook._magic_tables import (
    EXECUTOR, Table, executors_table, trial_outcome, trial_pending,
)
from apflow_nb.notebook import _magic_apflow as sub
from apflow_nb.notebook._magic_apflow import _running_loop, _unquote, open_session
from apflow_nb.notebook._magic_tree import check_task_array, one_line, parse_tree_text

SUBCOMMANDS = ("executors", "history", "cancel", "show", "watch", "store", "cache")


@magics_class
class ApflowMagics(Magics):
    """apflow_nb's magics: ``%%executor``, ``%%tree`` and ``%apflow``."""

    def __init__(self, shell: Any = None, **kwargs: Any):
        super().__init__(shell, **kwargs)
        self._cell_id: str | None = None  # the notebook cell now running (Jupyter sends its id)
        self._by_cell: dict[str, dict[str, RegistryEntry]] = {}  # what each %%executor cell registered last
        self._trial_task: asyncio.Future[None] | None = None

    def _note_cell(self, info: Any) -> None:
        """pre_run_cell hook: remember which notebook cell runs, so a re-run can drop ids it no longer defines."""
        self._cell_id = getattr(info, "cell_id", None)

    # -- %%executor ---------------------------------------------------------------------------------
    @magic_arguments()
    @argument("executor_id", nargs="?", default=None, metavar="ID",
              help="id for the cell's function executor (default: the function's name); with several "
                   "functions, the one named ID is registered; renames the cell's only executor class")
    @argument("--run", dest="run_inputs", default=None, metavar="JSON",
              help="run the new executor once on these JSON inputs, e.g. --run '{\"x\": 1}', and show the "
                   "result (a trial: it runs in an in-memory store, so it never shows up in history)")
    @argument("--thread", action="store_true",
              help="run a sync function executor in a worker thread (blocking code then does not freeze "
                   "live views)")
    @argument("--quiet", action="store_true", help="do not show the summary of what was registered")
    @argument("--cache", action="store_true",
              help="cache results, keyed by this cell's source and each task's inputs (re-running the cell "
                   "unchanged keeps the cache; editing it recomputes)")
    @argument("--cache-version", dest="cache_version", default=None, metavar="V",
              help="part of the cache key: bump it to recompute what the cache holds")
    @argument("--cache-ttl", dest="cache_ttl", type=float, default=None, metavar="SECONDS",
              help="cached results expire after this many seconds")
    @argument("--retries", type=int, default=None, metavar="N", help="try a failed task again up to N times")
    @argument("--retry-delay", dest="retry_delay", default=None, metavar="S[,S...]",
              help="seconds to wait before each retry (one value, or one per retry)")
    @argument("--retry-jitter", dest="retry_jitter", type=float, default=None, metavar="F",
              help="stretch each delay by up to this fraction (0..1) of itself")
    @argument("--timeout", type=float, default=None, metavar="SECONDS",
              help="stop an attempt that runs longer (through the cancellation path; a failure: TaskTimeout)")
    @cell_magic
    def executor(self, line: str, cell: str) -> None:
        """Run the cell, then register the executors it defines.

        The cell runs in the notebook's namespace like any cell (IPython syntax works, the last
        expression is shown). Then:

        - every ExecutableTask / BaseTask subclass the cell defines with its own ``id`` is
          registered under that id (abstract classes, classes without an ``id`` and imported
          classes are not);
        - otherwise, the one plain ``def`` / ``async def`` function the cell defines is registered
          as executor ID (default: its name); its signature is the input schema. Helpers named
          ``_like_this`` and lambdas do not count; with several functions, ID picks one.

        Executors the cell registers itself are listed too.
        Re-running the cell replaces the registration (by id). A table shows id, name and input
        fields (``*`` = required). If the cell raises, its own traceback is shown and the registry
        is left exactly as it was.

            %%executor
            from apflow_nb import BaseTask
            class Fetch(BaseTask):
                id = "fetch"
                async def execute(self, inputs): ...

            %%executor double --run '{"x": 21}'
            def twice(x: int) -> int:
                return 2 * x

        Run settings (--cache, --retries, --retry-delay, ...) apply to every task of these executors
        unless a task says otherwise.
        """
        args = parse_argstring(self.executor, line)
        executor_id = _unquote(args.executor_id)
        policy = policy_of(args)
        registry = get_registry()
        snapshot = {e.id: e for e in registry.list(EXECUTOR)}
        ns = self.shell.user_ns
        before = dict(ns)
        try:
            filename = run_cell_code(self.shell, cell)
        except BaseException:
            restore_registry(snapshot)
            raise
        try:
            registered = self._register(ns, before, filename, snapshot, executor_id, args.thread, policy)
            remember_source(registered, cell)
        except UsageError:
            restore_registry(snapshot)
            raise
        except (ApflowError, TypeError, ValueError) as exc:
            restore_registry(snapshot)
            raise UsageError(f"%%executor: {exc}") from None
        dropped = self._forget_stale(registered)
        if not args.quiet:
            removed = f"; removed {', '.join(dropped)} (this cell no longer defines it)" if dropped else ""
            display(executors_table(registered, title=f"registered {len(registered)} executor(s){removed}",
                                    with_source=False))
        if args.run_inputs is not None:
            self._trial(registered, args.run_inputs)

    def _register(self, ns: dict[str, Any], before: dict[str, Any], filename: str, snapshot: dict[str, RegistryEntry],
                  executor_id: str | None, thread: bool, policy: dict[str, Any]) -> list[str]:
        from apflow_nb.core.extensions.decorators import executor_register

        registry = get_registry()
        # what the cell registered by itself (executor_register calls, decorators)
        by_cell = [e for e in registry.list(EXECUTOR) if snapshot.get(e.id) is not e]
        taken = {id(e.obj) for e in by_cell} | {id(getattr(e.cls, "function", None)) for e in by_cell}
        values = changed_values(ns, before)
        classes, idless = defined_classes(values, ns.get("__name__", "__main__"))
        classes = [c for c in classes if id(c) not in taken]
        idless = [c for c in idless if id(c) not in taken]
        functions = [f for f in defined_functions(values, filename) if id(f) not in taken]
        ids = [e.id for e in by_cell]
        if thread and (classes or (idless and executor_id)):
            raise UsageError("%%executor --thread applies to a function executor; an executor class "
                             "decides itself where its work runs")
        if executor_id and classes + idless:
            if len(classes + idless) != 1:
                names = ", ".join(c.__name__ for c in classes + idless)
                raise UsageError(f"%%executor {executor_id}: ID renames the cell's only executor class, "
                                 f"but it defines several ({names}); set each class's `id` instead")
            executor_register((classes + idless)[0], executor_id=executor_id, **policy)
            return _unique(ids + [executor_id])
        if classes:
            for cls in classes:
                executor_register(cls, **policy)
            return _unique(ids + [c.__dict__["id"] for c in classes])
        if len(functions) > 1 and executor_id:
            named = [f for f in functions if f.__name__ == executor_id]
            functions = named or functions
        if len(functions) == 1:
            fn = functions[0]
            executor_register(fn, executor_id=executor_id, thread=thread, **policy)
            return _unique(ids + [executor_id or fn.__name__])
        if ids:
            return ids  # the cell registered its executors itself; other functions are its helpers
        if functions:
            names = ", ".join(f.__name__ for f in functions)
            raise UsageError(f"%%executor: the cell defines several functions ({names}) and no executor "
                             f"class; name the one to register (%%executor {functions[0].__name__}), or "
                             f"name helpers _like_this")
        if idless:
            names = ", ".join(c.__name__ for c in idless)
            raise UsageError(f"%%executor: {names} has no `id` of its own; set `id = \"...\"` in the class "
                             f"or give one: %%executor ID")
        raise UsageError("%%executor: the cell defines no ExecutableTask subclass with an `id` and no function "
                         "to register")

    def _forget_stale(self, registered: list[str]) -> list[str]:
        """Re-running a notebook cell replaces what it registered before: an id it registered last
        time and no longer does is removed, unless something else registered that id since."""
        if not self._cell_id:
            return []
        registry = get_registry()
        before = self._by_cell.get(self._cell_id, {})
        dropped = []
        for old_id, entry in before.items():
            if old_id not in registered and registry.get(EXECUTOR, old_id) is entry:
                registry.remove(EXECUTOR, old_id)
                dropped.append(old_id)
        self._by_cell[self._cell_id] = {i: registry.get(EXECUTOR, i) for i in registered}  # type: ignore[misc]
        return dropped

    def _trial(self, registered: list[str], raw_inputs: str) -> None:
        """Run the cell's one executor once on JSON inputs in an in-memory store (trials stay out of history)."""
        if len(registered) != 1:
            raise UsageError(f"%%executor --run needs exactly one executor; this cell registered "
                             f"{len(registered)}: {', '.join(registered)}")
        executor_id = registered[0]
        text = _unquote(raw_inputs) or ""
        try:
            inputs = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            raise UsageError(f"%%executor --run: the inputs are not valid JSON ({exc.msg} at column "
                             f"{exc.colno}): {text!r}") from None
        if not isinstance(inputs, dict):
            raise UsageError(f"%%executor --run: the inputs must be a JSON object, got {text!r}")
        from apflow_nb.core.execution.task_manager import TaskManager
        from apflow_nb.core.storage.session import create_session
        from apflow_nb.notebook.run import run

        manager = TaskManager(create_session("sqlite://"), event_log=False)
        try:
            trial = run([{"name": executor_id, "inputs": inputs}], manager=manager, display=False)
        except ApflowError as exc:
            raise UsageError(f"%%executor --run: {executor_id!r} is registered, but the trial cannot start: "
                             f"{one_line(exc)}") from None
        self.shell.user_ns["_apflow_trial"] = trial
        if _running_loop() is None:  # a terminal IPython, a test: finish now
            display(trial_outcome(executor_id, trial.result()))
            return
        # inside a kernel: show a placeholder now and update it in place when the trial ends
        handle = display(trial_pending(executor_id), display_id=True)

        async def show_when_done() -> None:
            try:
                node = await trial
            except (Exception, asyncio.CancelledError) as exc:  # shown, not lost in a background task
                handle.update(Table(["executor", "status", "error"], [[executor_id, "error", one_line(exc)]],
                                    title="trial run (in-memory store)"))
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            handle.update(trial_outcome(executor_id, node))

        self._trial_task = asyncio.ensure_future(show_when_done())

    # -- %%tree -------------------------------------------------------------------------------------
    @magic_arguments()
    @argument("--store", default=None, metavar="URL",
              help="SQLAlchemy URL of the store for this run (default: the kernel's store, see %%apflow store)")
    @argument("--name", default="_run", metavar="VAR",
              help="variable that receives the Run handle (default: _run); the next cell can `await _run`")
    @argument("--no-display", dest="no_display", action="store_true", help="do not show the live view")
    @argument("--display", default="auto", choices=["auto", "widget", "html", "text", "none"],
              help="which view: auto (the best one here), widget, html, text or none")
    @argument("--view", default="table", choices=["table", "graph"],
              help="the face the view starts on: table (one row per task) or graph (the dependency graph)")
    @argument("--user", default=None, metavar="USER_ID", help="user_id stored with the tasks")
    @argument("--cache", action="store_true",
              help="cache every task's result unless its task or executor says otherwise")
    @argument("--max-concurrency", dest="max_concurrency", type=int, default=None, metavar="N",
              help="run at most N tasks at once")
    @cell_magic
    def tree(self, line: str, cell: str) -> None:
        """Check, store, run and show the task tree written in the cell (JSON or YAML).

        The cell holds a task array (the original project's format): a list of tasks, each with
        ``name`` (the executor id) and optionally ``id`` (all tasks or none), ``parent_id``,
        ``dependencies`` (ids, or {"id": ..., "required": false}), ``inputs``, ``priority``
        (0 urgent .. 3 low), ``schemas`` ({"method": executor id}) and ``params``. A mapping with
        a ``tasks`` list works too.

        Everything is checked before anything is written: a cycle, an unknown parent or dependency
        id, an unknown executor or bad inputs stop here with a one-line named error naming the task
        and the field. Then the tree is stored, run with ``apflow_nb.run`` and shown live. In a
        notebook the run goes on in the background (the next cells run meanwhile) and its Run
        handle is in ``_run`` (see --name): ``tree = await _run``, ``_run.cancel()``. Where no event
        loop runs (a terminal IPython) the cell runs the tree to its end; Ctrl-C cancels it.

            %%tree
            - {id: root, name: aggregate_results_executor, dependencies: [a]}
            - {id: a, name: double, parent_id: root, inputs: {x: 21}}
        """
        args = parse_argstring(self.tree, line)
        name = _unquote(args.name) or "_run"
        if not name.isidentifier() or keyword.iskeyword(name):
            raise UsageError(f"%%tree --name: {name!r} is not a valid variable name")
        tasks = parse_tree_text(cell)
        try:
            check_task_array(tasks)
        except ApflowError as exc:
            raise UsageError(f"%%tree: {one_line(exc)}") from None
        session = open_session(_unquote(args.store), "%%tree")
        from apflow_nb.notebook.run import run

        mode: Any = False if args.no_display or args.display == "none" else (
            True if args.display == "auto" else args.display)
        try:
            handle = run(tasks, session=session, display=mode, max_concurrency=args.max_concurrency,
                         user_id=args.user, view=args.view, cache=True if args.cache else None)
        except (ApflowError, ValueError, TypeError) as exc:
            raise UsageError(f"%%tree: {one_line(exc)}") from None
        self.shell.user_ns[name] = handle
        if _running_loop() is None:
            handle.result()  # no loop to run in the background: run it here

    # -- %apflow ------------------------------------------------------------------------------------
    @magic_arguments()
    @argument("command", nargs="?", default=None, metavar="{" + ",".join(SUBCOMMANDS) + "}",
              help="what to do (see above)")
    @argument("rest", nargs=argparse.REMAINDER, help="the sub-command's arguments")
    @line_magic
    def apflow(self, line: str) -> Any:
        """apflow_nb from the notebook. Sub-commands:

          %apflow executors
              the registered executors as a table (id, name, kind, input fields, source)
          %apflow history [--status S[,S]] [--executor E] [--root ROOT_ID] [--user U] [--limit N] [--store URL]
              stored tasks as a DataFrame (apflow_nb.history), newest first; --root gives one run in tree order
          %apflow cancel ID [--store URL]
              cancel a run (its root id) or one task wherever it runs: on this kernel's event loop, through
              a cancel request to the process that runs it, or, when nobody runs it, in the store
          %apflow show ROOT_ID [--store URL]
              a stored tree as a view (status, progress, times, errors per task)
          %apflow watch [ROOT_ID] [--store URL]
              the live view of a run another process executes (default: the newest running tree), fed by
              the store's event log (apflow_nb.watch); its handle is in _watch (`await _watch`)
          %apflow cache [clear [--executor E] [--older-than SECONDS]] [--store URL]
              the result cache: entries per executor, or remove them (all, one executor's, older ones)
          %apflow store [URL | --reset]
              show the kernel's store (password masked), or set it: %%tree, %apflow and
              apflow_nb.run / history use it from then on (a setting of this kernel's process, not an
              environment variable; --reset goes back to ./.apflow/tasks.db)
        """
        args = parse_argstring(self.apflow, line)
        command, rest = args.command, [_unquote(r) or "" for r in args.rest]
        if command is None:
            print(self.apflow.__doc__)
            return None
        if command == "executors":
            sub.no_more(rest, "%apflow executors")
            return executors_table(title="registered executors")
        handlers = {"history": sub.history_command, "cancel": sub.cancel_command, "show": sub.show_command,
                    "store": sub.store_command, "cache": sub.cache_command}
        if command in handlers:
            return handlers[command](rest)
        if command == "watch":
            return sub.watch_command(self.shell, rest)
        raise UsageError(f"%apflow: unknown sub-command {command!r}; use one of {', '.join(SUBCOMMANDS)} "
                         f"(%apflow? for help)")

def _unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext apflow_nb``); loading again replaces them."""
    unload_ipython_extension(ipython)
    magics = ApflowMagics(ipython)
    ipython.register_magics(magics)
    ipython.events.register("pre_run_cell", magics._note_cell)
    install_cell_names(ipython)  # task tracebacks name cells as IPython does (Cell In[n])


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics and their cell hook again."""
    old = ipython.magics_manager.registry.pop("ApflowMagics", None)
    if old is None:
        return
    magics = ipython.magics_manager.magics
    for kind, name in (("cell", "executor"), ("cell", "tree"), ("line", "apflow")):
        magics[kind].pop(name, None)
    try:
        ipython.events.unregister("pre_run_cell", old._note_cell)
    except ValueError:
        pass


__all__ = ["ApflowMagics", "load_ipython_extension", "unload_ipython_extension", "parse_tree_text",
           "executors_table", "Table"]
