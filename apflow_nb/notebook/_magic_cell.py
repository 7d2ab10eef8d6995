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

MISSING = object()


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
    filename = shell.compile.cache(transformed, shell.execution_count, raw_code=cell)
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

