"""``%%executor``'s machinery: run a cell like the shell does, find the executors it defined.

The cell goes through the shell's own steps (IPython syntax transforms, AST transformers, the
execution-count cache so tracebacks read ``Cell In[n], line k``); its last expression is shown
as in any cell. A failure re-raises the user's own exception, rendered with the shell's own
traceback formatter starting at the cell's first frame (none of ours).
"""
from __future__ import annotations

import ast
import inspect
import types
from typing import Any, Callable, NoReturn

from IPython.core.error import UsageError

from apflow_nb.core.extensions.registry import RegistryEntry, get_registry

MISSING = object()
EXECUTOR = "executor"


class CellError(Exception):
    """Carries the rendered traceback of a failed cell when the user's exception cannot carry it."""

    def __init__(self, lines: list[str], message: str):
        super().__init__(message)
        self.lines = lines

    def _render_traceback_(self) -> list[str]:
        return self.lines


def run_cell_code(shell: Any, cell: str) -> str:
    """Run ``cell`` in ``shell.user_ns`` the way the shell runs a cell; raise the user's error.

    Returns the file name the cell's code objects carry (to tell its functions from imported ones).
    """
    transformed = shell.transform_cell(cell)
    filename = shell.compile.cache(transformed, cell_number(shell), raw_code=cell)
    try:
        tree = shell.transform_ast(shell.compile.ast_parse(transformed, filename=filename))
        body = list(tree.body)
        last: ast.Interactive | None = None
        if body and isinstance(body[-1], ast.Expr) and not transformed.rstrip().endswith(";"):
            last = ast.Interactive(body=[body.pop()])  # "single" mode: the shell's displayhook shows it
        code = shell.compile(ast.Module(body=body, type_ignores=[]), filename, "exec")
        last_code = shell.compile(last, filename, "single") if last is not None else None
    except SyntaxError as exc:  # e.g. a top-level `await`: an %%executor cell runs synchronously
        _raise_rendered(exc, shell.SyntaxTB.structured_traceback(type(exc), exc, []))
    ns = shell.user_ns
    try:
        exec(code, ns)  # noqa: S102 - running the user's cell is the point
        if last_code is not None:
            exec(last_code, ns)  # noqa: S102
        return filename
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's error, re-raised below
        tb = _from_cell(exc.__traceback__, filename)
        lines = shell.InteractiveTB.structured_traceback(type(exc), exc, tb, tb_offset=0)
        _raise_rendered(exc, lines, tb)


def cell_number(shell: Any) -> int:
    """The execution count of the cell running now (``In[n]``).

    IPython >= 9.16 increments ``shell.execution_count`` before a cell runs, older ones after; the
    running cell's own ExecutionResult knows its number either way.
    """
    result = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    count = getattr(result, "execution_count", None)
    return count if isinstance(count, int) else shell.execution_count


def install_cell_names(shell: Any = None) -> bool:
    """Name notebook cells in task tracebacks as IPython does (``Cell In[3], line 4``).

    Installs a frame namer in the core's traceback formatter that asks the shell's compiler which
    cell a file name is (ipykernel stores cells as temporary files). False outside IPython.
    """
    if shell is None:
        import sys

        if "IPython" not in sys.modules:
            return False
        from IPython import get_ipython

        shell = get_ipython()
    compiler = getattr(shell, "compile", None)
    if compiler is None or not hasattr(compiler, "format_code_name"):
        return False
    from apflow_nb.core.tracebacks import set_frame_namer

    def name(filename: str) -> str | None:
        try:
            label = compiler.format_code_name(filename)
        except Exception:  # noqa: BLE001 - a namer must never break a traceback
            return None
        return f"{label[0]} {label[1]}" if label else None

    set_frame_namer(name)
    return True


def _from_cell(tb: types.TracebackType | None, filename: str) -> types.TracebackType | None:
    """The traceback from the cell's own frame on (our frames left out)."""
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename != filename:
        start = start.tb_next
    return start if start is not None else tb


def _raise_rendered(exc: BaseException, lines: list[str], tb: types.TracebackType | None = None) -> NoReturn:
    """Re-raise the user's exception itself (so the kernel reports its real name), shown as ``lines``."""
    if isinstance(exc, SyntaxError):  # the shell draws a SyntaxError its own way, with our frames: wrap it
        raise _named_cell_error(exc, lines) from None
    if not hasattr(exc, "_render_traceback_"):
        try:
            exc._render_traceback_ = lambda: lines  # type: ignore[attr-defined]
        except (AttributeError, TypeError):  # an exception without __dict__
            raise _named_cell_error(exc, lines) from exc
    raise exc.with_traceback(tb if tb is not None else exc.__traceback__)


def _named_cell_error(exc: BaseException, lines: list[str]) -> CellError:
    """A CellError whose class name is the user's (the kernel reports ``ename`` from it)."""
    cls = type(type(exc).__name__, (CellError,), {"__module__": CellError.__module__})
    error = cls(lines, str(exc))
    error.original = exc  # type: ignore[attr-defined]
    return error


# -- what the cell defined ------------------------------------------------------------------------

def changed_values(ns: dict[str, Any], before: dict[str, Any]) -> list[Any]:
    """Public names the cell bound or rebound (each object once, in namespace order)."""
    seen: set[int] = set()
    out = []
    for key, value in list(ns.items()):
        if key.startswith("_") or before.get(key, MISSING) is value or id(value) in seen:
            continue
        seen.add(id(value))
        out.append(value)
    return out


def defined_classes(values: list[Any], module_name: str) -> tuple[list[type], list[type]]:
    """(executor classes with their own ``id``, concrete executor classes without one) the cell defined.

    Only classes defined in the notebook (``__module__`` is the user namespace's ``__name__``)
    count; imported ones (``from x import SomeExecutor``) are not registered again.
    """
    from apflow_nb.core.interfaces.executable_task import ExecutableTask

    with_id, without_id = [], []
    for v in values:
        if not (isinstance(v, type) and issubclass(v, ExecutableTask)) or inspect.isabstract(v):
            continue
        if v.__module__ != module_name:
            continue
        (with_id if v.__dict__.get("id") else without_id).append(v)
    return with_id, without_id


def defined_functions(values: list[Any], filename: str) -> list[Callable[..., Any]]:
    """Plain ``def`` / ``async def`` functions whose code is in this cell (no lambdas)."""
    out = []
    for v in values:
        if not inspect.isfunction(v):
            continue
        code = getattr(inspect.unwrap(v), "__code__", None)
        if code is None or code.co_filename != filename or v.__name__ == "<lambda>":
            continue
        out.append(v)
    return out


def unquote(value: str | None) -> str | None:
    """IPython's argument splitter keeps quotes around a value; drop one matching pair."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def policy_of(args: Any) -> dict[str, Any]:
    """The run settings ``%%executor`` was given (checked by executor_register)."""
    delay = unquote(args.retry_delay)
    if delay is not None:
        try:
            parts = [float(p) for p in delay.split(",")]
        except ValueError:
            raise UsageError(f"%%executor --retry-delay: give seconds, or several separated by commas; got {delay!r}")
        delay = parts[0] if len(parts) == 1 else parts  # type: ignore[assignment]
    found = {"cache": True if args.cache else None, "cache_version": unquote(args.cache_version),
             "cache_ttl": args.cache_ttl, "retries": args.retries, "retry_delay": delay,
             "retry_jitter": args.retry_jitter, "timeout": args.timeout}
    return {k: v for k, v in found.items() if v is not None}


def remember_source(registered: list[str], cell: str) -> None:
    """The cell's source is the code a cache key fingerprints for what it registered."""
    from apflow_nb.core.storage.cache_keys import SOURCE_ATTRIBUTE

    for executor_id in registered:
        entry = get_registry().get(EXECUTOR, executor_id)
        if entry is not None:
            try:
                setattr(entry.cls, SOURCE_ATTRIBUTE, cell)
            except (AttributeError, TypeError):  # a class that refuses attributes keeps its own fingerprint
                pass


def restore_registry(snapshot: dict[str, RegistryEntry]) -> None:
    """Put the executor registry back as it was (entries compared by id, then by entry)."""
    registry = get_registry()
    for entry in list(registry.list(EXECUTOR)):
        if entry.id not in snapshot:
            registry.remove(EXECUTOR, entry.id)
    for entry in snapshot.values():
        if registry.get(EXECUTOR, entry.id) is not entry:
            registry.add(entry)
