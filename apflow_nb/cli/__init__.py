"""``apflow-nb`` (and ``python -m apflow_nb``): run, watch, cancel and list task trees from a terminal.

Each command lives in a small module of this package; ``main`` parses the arguments and turns every
named error into one line on stderr (``apflow-nb: error: ...``, store passwords masked) and exit
status 2. ``apflow-nb COMMAND --help`` describes each command and its exit statuses.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from apflow_nb.cli.common import USAGE, scrub, store_url


def parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    from apflow_nb import __version__
    from apflow_nb.cli import control, history, run, watch

    p = argparse.ArgumentParser(prog="apflow-nb", description="Run, watch, cancel and list apflow_nb task trees.",
                                epilog="The store is --store URL, else $APFLOW_NB_DATABASE_URL, else ./.apflow/tasks.db.")
    p.add_argument("--version", action="version", version=f"apflow_nb {__version__}")
    commands = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run.add_parser(commands)
    watch.add_parser(commands)
    control.add_parsers(commands)
    history.add_parser(commands)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (see each command's help)."""
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure is one readable line, never a traceback
        from sqlalchemy.exc import SQLAlchemyError

        from apflow_nb.core.errors import ApflowError

        if not isinstance(exc, (ApflowError, SQLAlchemyError, OSError, ValueError, ImportError)):
            raise
        text = " ".join(str(exc).split()) if not isinstance(exc, SQLAlchemyError) else str(exc).splitlines()[0]
        print(f"apflow-nb: error: {type(exc).__name__}: {scrub(text, store_url(getattr(args, 'store', None)))}",
              file=sys.stderr, flush=True)
        return USAGE
