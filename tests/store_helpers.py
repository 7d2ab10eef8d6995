"""Small readers of a real store shared by several test files."""
from __future__ import annotations

from sqlalchemy import text

from apflow_nb import create_session
from apflow_nb.core.storage.session import dispose_engines


def stored_statuses(url: str) -> dict[str, str]:
    """Every task id in the store at ``url`` with its status, read through a fresh session."""
    db = create_session(url)
    try:
        return dict(db.execute(text("select id, status from apflow_tasks")).all())
    finally:
        db.close()
        dispose_engines()
