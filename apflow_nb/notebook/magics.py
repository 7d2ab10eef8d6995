"""IPython magics: ``%%executor``, ``%%tree`` and ``%apflow``. Thin: parse, call the public API, display."""
from __future__ import annotations

import html
import inspect
import json
import os
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from apflow_nb.core.errors import ApflowError
from apflow_nb.core.extensions.registry import RegistryEntry, get_registry
from apflow_nb.core.extensions.types import ExtensionCategory

EXECUTOR = ExtensionCategory.EXECUTOR


class Table:
    """A small table that renders as HTML in notebooks and as aligned text elsewhere."""

    def __init__(self, columns: list[str], rows: list[list[Any]], title: str = ""):
        self.columns, self.rows, self.title = columns, rows, title

    def _repr_html_(self) -> str:
        head = "".join(f"<th align='left'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in self.rows)
        title = f"<b>{html.escape(self.title)}</b>" if self.title else ""
        return f"{title}<table><tr>{head}</tr>{body}</table>"

    def __repr__(self) -> str:
        widths = [max(len(str(c)), *(len(str(r[i])) for r in self.rows)) if self.rows else len(c)
                  for i, c in enumerate(self.columns)]
        lines = [self.title] if self.title else []
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(self.columns, widths)))
        lines += ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in self.rows]
        return "\n".join(lines)


def input_fields(entry: RegistryEntry) -> str:
    """``data: string*, count: integer`` (* = required) from an executor's input schema."""
    try:
        schema = entry.create().get_input_schema() or {}
    except Exception as exc:  # an executor whose schema cannot be built still gets listed
        return f"(schema error: {exc})"
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    return ", ".join(f"{name}: {spec.get('type', 'any') if isinstance(spec, dict) else 'any'}"
                     f"{'*' if name in required else ''}" for name, spec in props.items())


def executors_table(ids: list[str] | None = None, title: str = "") -> Table:
    registry = get_registry()
    entries = [registry.get(EXECUTOR, i) for i in ids] if ids is not None else registry.list(EXECUTOR)
    rows = [[e.id, e.name, input_fields(e), e.source, e.description] for e in entries if e is not None]
    return Table(["id", "name", "inputs (* required)", "source", "description"], rows, title)


def parse_tree_text(text: str) -> list[dict[str, Any]]:
    """A task array from JSON or YAML text (a list, or a mapping with a ``tasks`` list)."""
    text = text.strip()
    if not text:
        raise UsageError("%%tree: the cell is empty; write the task array as JSON or YAML")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as json_error:
        try:
            import yaml
        except ImportError:
            raise UsageError(f"%%tree: the cell is not valid JSON ({json_error}); for YAML install pyyaml") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as yaml_error:
            raise UsageError(f"%%tree: the cell is neither JSON ({json_error}) nor YAML ({yaml_error})") from None
    if isinstance(data, dict) and "tasks" in data:
        data = data["tasks"]
    return data


@magics_class
class ApflowMagics(Magics):
    """apflow_nb's magics."""

    @magic_arguments()
    @argument("executor_id", nargs="?", default=None,
              help="id for a function executor (default: the function's name); classes use their own `id`")
    @argument("--run", dest="run_inputs", default=None,
              help="JSON inputs: run the new executor once on them (in an in-memory store) and show the result")
    @argument("--thread", action="store_true", help="run a sync function executor in a worker thread")
    @argument("--quiet", action="store_true", help="do not show the summary of what was registered")
    @cell_magic
    def executor(self, line: str, cell: str) -> Any:
        """Run the cell and register the executors it defines.

        Every ExecutableTask / BaseTask subclass the cell defines (with an ``id``) is registered;
        or, when the cell defines one plain ``def`` / ``async def`` function and no executor class,
        that function is registered as executor ID (its signature becomes the input schema).
        Re-running the cell replaces the registration. If the cell raises, its traceback is shown
        and the registry is left as it was.

            %%executor
            class Fetch(BaseTask): ...

            %%executor double --run '{"x": 21}'
            def double(x: int) -> int:
                return 2 * x
        """
        args = parse_argstring(self.executor, line)
        registry = get_registry()
        snapshot = {e.id: e for e in registry.list(EXECUTOR)}
        ns = self.shell.user_ns
        before = {k: v for k, v in ns.items()}
        filename = self.shell.compile.cache(cell, self.shell.execution_count)  # tracebacks show the source
        try:
            code = compile(cell, filename, "exec")
            exec(code, ns)  # noqa: S102 - running the user's cell is the point
        except Exception as exc:
            etype, value, tb = sys.exc_info()
            self._restore(snapshot)
            # the cell fails with the user's own traceback (our frame left out), as a normal cell would
            lines = self.shell.InteractiveTB.structured_traceback(etype, value, tb.tb_next if tb else None)
            raise CellError(lines) from exc
        try:
            registered = self._register_new(ns, before, args, code.co_filename, snapshot)
        except (ApflowError, TypeError, ValueError) as exc:
            self._restore(snapshot)
            raise UsageError(f"%%executor: {exc}") from None
        if not args.quiet:
            display(executors_table(registered, title=f"registered {len(registered)} executor(s)"))
        if args.run_inputs is not None:
            if len(registered) != 1:
                raise UsageError(f"%%executor --run needs exactly one registered executor, got {registered}")
            return self._trial(registered[0], args.run_inputs)
        return None

    @staticmethod
    def _restore(snapshot: dict[str, RegistryEntry]) -> None:
        registry = get_registry()
        for entry in list(registry.list(EXECUTOR)):
            if entry.id not in snapshot:
                registry.remove(EXECUTOR, entry.id)
        for entry in snapshot.values():
            registry.add(entry)

    def _register_new(self, ns: dict[str, Any], before: dict[str, Any], args: Any, filename: str,
                      snapshot: dict[str, RegistryEntry]) -> list[str]:
        from apflow_nb.core.extensions.decorators import executor_register
        from apflow_nb.core.interfaces.executable_task import ExecutableTask

        changed = [(k, v) for k, v in ns.items() if not k.startswith("_") and before.get(k, _MISSING) is not v]
        classes = [v for _, v in changed if isinstance(v, type) and issubclass(v, ExecutableTask)
                   and not inspect.isabstract(v) and getattr(v, "id", "")]
        ids: list[str] = []
        if classes:
            for cls in classes:
                executor_register(cls, executor_id=args.executor_id if len(classes) == 1 and args.executor_id else None)
                ids.append(args.executor_id if len(classes) == 1 and args.executor_id else cls.id)
            return ids
        functions = [v for _, v in changed if inspect.isfunction(v) and v.__code__.co_filename == filename]
        if len(functions) == 1:
            fn = functions[0]
            executor_register(fn, executor_id=args.executor_id, thread=args.thread)
            return [args.executor_id or fn.__name__]
        if len(functions) > 1:
            names = ", ".join(f.__name__ for f in functions)
            raise ValueError(f"the cell defines several functions ({names}) and no executor class; "
                             f"define one function per %%executor cell, or an ExecutableTask subclass")
        by_cell = [e.id for e in get_registry().list(EXECUTOR) if snapshot.get(e.id) is not e]
        if by_cell:
            return by_cell  # the cell registered executors itself (executor_register calls)
        raise ValueError("the cell defines no ExecutableTask subclass with an `id` and no function to register")

    def _trial(self, executor_id: str, raw_inputs: str) -> Any:
        """Run the executor once on JSON inputs in an in-memory store (trials stay out of history)."""
        raw_inputs = raw_inputs.strip()
        if len(raw_inputs) > 1 and raw_inputs[0] == raw_inputs[-1] and raw_inputs[0] in "'\"":
            raw_inputs = raw_inputs[1:-1]  # IPython's argument splitter keeps the quotes
        try:
            inputs = json.loads(raw_inputs)
        except json.JSONDecodeError as exc:
            raise UsageError(f"%%executor --run: inputs are not valid JSON ({exc}): {raw_inputs!r}") from None
        from apflow_nb.core.execution.task_manager import TaskManager
        from apflow_nb.core.storage.session import create_session
        from apflow_nb.notebook.run import run

        manager = TaskManager(create_session("sqlite://"), event_log=False)
        trial = run([{"name": executor_id, "inputs": inputs}], manager=manager, display=False)
        self.shell.user_ns["_apflow_trial"] = trial
        if not _in_loop():  # a terminal IPython: finish now
            return _trial_outcome(executor_id, trial.result())

        async def show_when_done() -> None:  # inside a kernel: the outcome appears in this cell
            display(_trial_outcome(executor_id, await trial))

        import asyncio

        asyncio.ensure_future(show_when_done())
        return None

    @magic_arguments()
    @argument("--store", default=None, help="SQLAlchemy URL of the store (default: the kernel's store)")
    @argument("--display", default="auto", help="auto, widget, html, text or none")
    @argument("--no-display", dest="no_display", action="store_true", help="do not show the live view")
    @argument("--name", default="_run", help="variable that receives the Run handle (default: _run)")
    @argument("--user", default=None, help="user_id for the tasks")
    @cell_magic
    def tree(self, line: str, cell: str) -> None:
        """Run a task tree written in the cell as JSON or YAML (the task-array format).

        Each task: ``name`` (the executor id), and optionally ``id`` (all or none), ``parent_id``,
        ``dependencies`` (ids or {"id", "required"}), ``inputs``, ``priority`` (0 urgent .. 3 low),
        ``schemas`` ({"method": executor id}), ``params``. The tree is checked first (cycles,
        unknown ids, unknown executors, bad inputs: a named error with the task and field), then
        stored, run and shown live. The Run handle lands in ``_run`` (see --name): ``await _run``.

            %%tree
            - {id: root, name: aggregate_results_executor, dependencies: [a]}
            - {id: a, name: double, parent_id: root, inputs: {x: 21}}
        """
        args = parse_argstring(self.tree, line)
        tasks = parse_tree_text(cell)
        from apflow_nb.notebook.run import run

        display_mode = False if args.no_display or args.display == "none" else (
            True if args.display == "auto" else args.display)
        try:
            handle = run(tasks, store=args.store, display=display_mode, user_id=args.user)
        except (ApflowError, ValueError, TypeError) as exc:
            raise UsageError(f"%%tree: {type(exc).__name__}: {exc}") from None
        self.shell.user_ns[args.name] = handle
        return None

    @line_magic
    def apflow(self, line: str) -> Any:
        """apflow_nb from the notebook. Sub-commands:

          %apflow executors                      table of registered executors
          %apflow history [--status S] [--executor E] [--root ID] [--limit N]
                                                 stored tasks as a DataFrame (apflow_nb.history)
          %apflow cancel ID                      cancel a running run (root id) or task
          %apflow show ROOT_ID                   a stored tree as a view
          %apflow store [URL]                    show, or set for this kernel, the store URL
                                                 (sets APFLOW_NB_DATABASE_URL in this process)
        """
        parts = shlex.split(line)
        if not parts:
            raise UsageError("%apflow needs a sub-command: executors, history, cancel, show or store (%apflow? for help)")
        command, rest = parts[0], parts[1:]
        if command == "executors":
            return executors_table(title="registered executors")
        if command == "history":
            return self._history(rest)
        if command == "cancel":
            if len(rest) != 1:
                raise UsageError("usage: %apflow cancel ID")
            return self._cancel(rest[0])
        if command == "show":
            if len(rest) != 1:
                raise UsageError("usage: %apflow show ROOT_ID")
            return self._show(rest[0])
        if command == "store":
            return self._store(rest)
        raise UsageError(f"%apflow: unknown sub-command {command!r}; use executors, history, cancel, show or store")

    @staticmethod
    def _history(rest: list[str]) -> Any:
        import argparse

        parser = argparse.ArgumentParser(prog="%apflow history", add_help=False)
        parser.add_argument("--status")
        parser.add_argument("--executor")
        parser.add_argument("--root", dest="root_id")
        parser.add_argument("--user", dest="user_id")
        parser.add_argument("--limit", type=int)
        parser.add_argument("--store")
        try:
            ns = parser.parse_args(rest)
        except SystemExit:
            raise UsageError("usage: %apflow history [--status S] [--executor E] [--root ID] [--user U] "
                             "[--limit N] [--store URL]") from None
        from apflow_nb.analysis import history

        return history(ns.store, status=ns.status, executor=ns.executor, root_id=ns.root_id, user_id=ns.user_id,
                       limit=ns.limit)

    @staticmethod
    def _cancel(target: str) -> str:
        from apflow_nb.core.execution.task_manager import cancel_running

        if cancel_running(target) is not None:
            return f"cancelling {target}"
        from apflow_nb.core.execution.task_manager import TaskManager
        from apflow_nb.core.storage.session import create_session

        manager = TaskManager(create_session())
        try:
            task = manager.task_repository.get_task(target)
        except ApflowError as exc:
            raise UsageError(f"%apflow cancel: {exc}") from None
        import asyncio

        coro = manager.cancel_task(task.id, reason="cancelled with %apflow cancel")
        try:
            asyncio.get_running_loop()
            asyncio.ensure_future(coro)
        except RuntimeError:
            asyncio.run(coro)
        return f"cancelling {target} (not running here: marked cancelled in the store)"

    @staticmethod
    def _show(root_id: str) -> Any:
        from apflow_nb.core.storage.session import create_session
        from apflow_nb.core.storage.sqlalchemy.task_repository import TaskRepository
        from apflow_nb.notebook.progress import RunState
        from apflow_nb.notebook.views.live import LiveView

        repo = TaskRepository(create_session())
        try:
            node = repo.get_task_tree_sync(root_id)
        except ApflowError as exc:
            raise UsageError(f"%apflow show: {exc}") from None
        return LiveView(RunState.from_tree(node), mode="html")

    @staticmethod
    def _store(rest: list[str]) -> str:
        from apflow_nb.core.storage.session import ENV_URL, default_database_url

        if rest:
            os.environ[ENV_URL] = rest[0]
            from apflow_nb.core.storage.session import create_session

            create_session(rest[0]).close()  # fail now, not at the next run, if the URL is wrong
        return f"store: {default_database_url()}"


_MISSING = object()


class CellError(Exception):
    """Raised when an %%executor cell fails; IPython shows the user's traceback it carries."""

    def __init__(self, lines: list[str]):
        super().__init__("the %%executor cell raised; the registry was left unchanged")
        self.lines = lines

    def _render_traceback_(self) -> list[str]:
        return self.lines


def _trial_outcome(executor_id: str, node: Any) -> Table:
    task = node.task
    shown = task.result if task.status == "completed" else (task.error or task.result)
    return Table(["executor", "status", "result"], [[executor_id, task.status, json.dumps(shown, default=str)[:2000]]],
                 title="trial run")


def _in_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext apflow_nb``)."""
    ipython.register_magics(ApflowMagics)


def unload_ipython_extension(ipython: Any) -> None:  # pragma: no cover - IPython calls it on %unload_ext
    pass


__all__ = ["ApflowMagics", "load_ipython_extension", "parse_tree_text", "executors_table"]
