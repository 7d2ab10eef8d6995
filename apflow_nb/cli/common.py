"""What every ``apflow-nb`` command shares: usage errors, store URLs shown masked, loading executors
and task-array files."""
from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from apflow_nb.core.errors import ApflowError

USAGE = 2  # exit status of a usage error or bad input (as argparse exits)


class CliUsageError(ApflowError, ValueError):
    """A command-line argument or input file that cannot be used; the message says which and how to fix it."""


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (never shown in full; unparsable URLs are not echoed)."""
    try:
        from apflow_nb.core.storage.urls import mask_url as shared  # the security helper's one masking helper
    except ImportError:
        shared = None
    if shared is not None:
        return shared(url)
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL may hold a password anywhere: never echo it
        return "(a store URL that could not be parsed)"


def scrub(text: str, url: str | None) -> str:
    """``text`` with the store URL's password replaced by ``***`` (driver errors may quote it)."""
    try:
        from apflow_nb.core.storage.urls import scrub as shared  # every password this process has seen
    except ImportError:
        shared = None
    if shared is not None:
        text = shared(text)
    if not url:
        return text
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001
        return text.replace(url, mask_url(url))
    text = text.replace(url, mask_url(url))
    return text.replace(str(password), "***") if password else text


def store_url(given: str | None) -> str:
    """The store a command uses: ``--store``, else ``$APFLOW_NB_DATABASE_URL``, else ``./.apflow/tasks.db``."""
    from apflow_nb.core.storage.session import default_database_url

    return given or default_database_url()


def add_store(parser: Any) -> None:
    parser.add_argument("--store", metavar="URL", default=None,
                        help="SQLAlchemy URL of the store (default: $APFLOW_NB_DATABASE_URL, else ./.apflow/tasks.db)")


def load_executors(specs: list[str] | None) -> list[str]:
    """Import each module name or ``.py`` file in ``specs`` (their ``executor_register`` calls register
    executors); returns what was loaded. CliUsageError names a spec that cannot be found or raised."""
    loaded = []
    if "" not in sys.path:
        sys.path.insert(0, "")  # module names resolve from the working directory, as with python -m
    for spec in specs or ():
        path = Path(spec)
        try:
            if spec.endswith(".py") or path.is_file():
                if not path.is_file():
                    raise CliUsageError(f"--executors {spec}: no such file")
                name = f"apflow_executors_{path.stem}"
                module_spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
                sys.modules[name] = module
                module_spec.loader.exec_module(module)  # type: ignore[union-attr]
            else:
                importlib.import_module(spec)
        except CliUsageError:
            raise
        except ModuleNotFoundError as exc:
            raise CliUsageError(f"--executors {spec}: no file or module of that name ({exc}); give a .py file or an "
                                f"importable module name") from None
        except Exception as exc:  # noqa: BLE001 - the user's module raised while loading
            raise CliUsageError(f"--executors {spec}: loading it raised {type(exc).__name__}: {exc}") from None
        loaded.append(spec)
    return loaded


def load_tree(path_text: str) -> list[dict[str, Any]]:
    """The task array in a ``.json``, ``.yaml`` or ``.yml`` file: a list of tasks, a mapping with a
    ``tasks`` list, or one task. CliUsageError names the file, the line and what is wrong."""
    path = Path(path_text)
    if not path.is_file():
        raise CliUsageError(f"{path_text}: no such file (give a task array as a .json, .yaml or .yml file)")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        data = _yaml(text, path_text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliUsageError(f"{path_text}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if isinstance(data, dict) and "tasks" in data:
        data = data["tasks"]
    elif isinstance(data, dict) and "name" in data:
        data = [data]
    if not isinstance(data, list):
        raise CliUsageError(f"{path_text}: the file must hold a list of tasks, got {type(data).__name__}")
    return data


def _yaml(text: str, where: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise CliUsageError(f"{where}: reading YAML needs pyyaml (pip install pyyaml, or apflow_nb[notebook]); "
                            f"or write the tree as JSON") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise CliUsageError(f"{where}: not valid YAML ({at}{getattr(exc, 'problem', None) or exc})") from None
