"""``%apflow``'s sub-commands: history, cancel, show, watch, store and cache, each parsed and delegated."""
from __future__ import annotations

import argparse
import asyncio
from typing import Any

from IPython.core.error import UsageError

from apflow_nb.core.errors import ApflowError
from apflow_nb.notebook._magic_cell import unquote as _unquote
from apflow_nb.notebook._magic_tables import Note, history_table
from apflow_nb.notebook._magic_tree import one_line


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def no_more(rest: list[str], prog: str) -> None:
    """A sub-command that takes no arguments got some: say so."""
    if rest:
        raise UsageError(f"{prog} takes no arguments, got {' '.join(rest)}")


def store_errors() -> tuple[type[BaseException], ...]:
    """What opening or reading a store may raise besides our own errors."""
    from sqlalchemy.exc import SQLAlchemyError

    return (SQLAlchemyError, OSError)


def open_session(url: str | None, where: str) -> Any:
    """A Session on ``url`` (None: the kernel's store); a bad URL is a one-line UsageError (URL masked)."""
    from apflow_nb.core.storage.session import create_session, default_database_url
    from apflow_nb.core.storage.urls import mask_url

    try:
        return create_session(url)
    except (ApflowError, ValueError, ImportError, *store_errors()) as exc:
        shown = url or default_database_url()
        raise UsageError(f"{where}: cannot open the store {mask_url(shown)!r}: {one_line(exc, shown)}") from None


class SubParser(argparse.ArgumentParser):
    """An argparse parser for one ``%apflow`` sub-command: mistakes are UsageErrors, not exits."""

    def __init__(self, prog: str):
        super().__init__(prog=prog, add_help=False)

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _no_more(rest: list[str], prog: str) -> None:
    if rest:
        raise UsageError(f"{prog} takes no arguments, got {' '.join(rest)}")


def history_command(rest: list[str]) -> Any:
    parser = SubParser("%apflow history")
    parser.add_argument("--status", help="comma-separated statuses")
    parser.add_argument("--executor", help="comma-separated executor ids")
    parser.add_argument("--root", dest="root_id")
    parser.add_argument("--user", dest="user_id")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--store")
    ns = parser.parse_args(rest)
    from apflow_nb.analysis import history

    split = lambda v: None if v is None else [s for s in v.split(",") if s]  # noqa: E731
    try:
        frame = history(ns.store, status=split(ns.status), executor=split(ns.executor), root_id=ns.root_id,
                        user_id=ns.user_id, limit=ns.limit)
    except (ApflowError, ValueError, *store_errors()) as exc:
        raise UsageError(f"%apflow history: {one_line(exc, ns.store)}") from None
    return history_table(frame)

def cancel_command(rest: list[str]) -> Note:
    parser = SubParser("%apflow cancel")
    parser.add_argument("id")
    parser.add_argument("--store")
    ns = parser.parse_args(rest)
    from apflow_nb.notebook.control import cancel

    try:
        outcome = cancel(ns.id, _unquote(ns.store), reason="cancelled with %apflow cancel")
    except (ApflowError, ValueError, ImportError, *store_errors()) as exc:
        raise UsageError(f"%apflow cancel: {one_line(exc)}") from None
    if outcome.action == "local":
        return Note(f"cancelling {ns.id} (running in this kernel)")
    if outcome.action == "cancelled":
        return Note(f"cancelling {ns.id} (not running in this kernel or elsewhere: its unfinished tasks are "
                    f"marked cancelled in the store)")
    return Note(outcome.message)

def watch_command(shell: Any, rest: list[str]) -> None:
    parser = SubParser("%apflow watch")
    parser.add_argument("root_id", nargs="?")
    parser.add_argument("--store")
    ns = parser.parse_args(rest)
    from apflow_nb.notebook.watch import watch

    try:
        handle = watch(_unquote(ns.root_id), _unquote(ns.store))
    except (ApflowError, ValueError, ImportError, *store_errors()) as exc:
        raise UsageError(f"%apflow watch: {one_line(exc)}") from None
    shell.user_ns["_watch"] = handle
    if _running_loop() is None and not handle.done():
        handle.result()  # a terminal IPython: follow the run here

def show_command(rest: list[str]) -> Any:
    parser = SubParser("%apflow show")
    parser.add_argument("root_id")
    parser.add_argument("--store")
    ns = parser.parse_args(rest)
    from apflow_nb.core.storage.sqlalchemy.task_repository import TaskRepository
    from apflow_nb.notebook.progress import RunState
    from apflow_nb.notebook.views.live import LiveView

    repo = TaskRepository(open_session(ns.store, "%apflow show"))
    try:
        node = repo.get_task_tree_sync(ns.root_id)
    except ApflowError as exc:
        raise UsageError(f"%apflow show: {one_line(exc)}") from None
    return LiveView(RunState.from_tree(node), mode="html")

def store_command(rest: list[str]) -> Note:
    from apflow_nb.core.storage.session import default_database_url, set_default_database_url
    from apflow_nb.core.storage.urls import mask_url

    parser = SubParser("%apflow store")
    parser.add_argument("url", nargs="?")
    parser.add_argument("--reset", action="store_true")
    ns = parser.parse_args(rest)
    if ns.reset and ns.url:
        raise UsageError("%apflow store: give a URL or --reset, not both")
    if ns.reset:
        set_default_database_url(None)
    elif ns.url:
        url = absolute_sqlite(ns.url)
        open_session(url, "%apflow store").close()  # a wrong URL fails now, and the setting stays as it was
        set_default_database_url(url)
    return Note(f"store: {mask_url(default_database_url())}")



def absolute_sqlite(url: str) -> str:
    """``sqlite:///rel.db`` -> the absolute file, so a later ``%cd`` does not move the kernel's store."""
    from apflow_nb.core.storage.urls import StoreURLError, parse_url

    try:
        parsed = parse_url(url)
    except StoreURLError as exc:  # its message never repeats the URL's password
        raise UsageError(f"%apflow store: {exc}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        from pathlib import Path

        path = Path(parsed.database).expanduser()
        if not path.is_absolute():
            return parsed.set(database=str(path.resolve())).render_as_string(hide_password=False)
    return url




def cache_command(rest: list[str]) -> Note:
    """``%apflow cache [clear [--executor E] [--older-than SECONDS]] [--store URL]``."""
    from datetime import timedelta

    from apflow_nb.core.storage.cache import clear, stats

    parser = SubParser("%apflow cache")
    parser.add_argument("action", nargs="?", choices=["clear"])
    parser.add_argument("--executor")
    parser.add_argument("--older-than", dest="older_than", type=float, metavar="SECONDS")
    parser.add_argument("--store")
    ns = parser.parse_args(rest)
    engine = open_session(_unquote(ns.store), "%apflow cache").get_bind()
    if ns.action == "clear":
        older = timedelta(seconds=ns.older_than) if ns.older_than is not None else None
        removed = clear(engine, _unquote(ns.executor), older)
        return Note(f"removed {removed} cached result(s)")
    entries = stats(engine)
    if not entries:
        return Note("the cache is empty")
    return Note("cached results: " + ", ".join(f"{executor} {count}" for executor, count in entries))
