"""The SQLAlchemy TaskModel (table ``apflow_tasks``) and the switch for a custom subclass.

A subclass that repeats ``__tablename__ = "apflow_tasks"`` and adds columns works as the seed
shows: it maps onto the same table, whose new (nullable) columns are added to an existing store
the next time a repository touches it.
"""
from __future__ import annotations

import warnings
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, Float, Index, Integer, String, Table, Text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from apflow_nb.core.clock import new_task_id, utcnow  # noqa: F401 - re-exported: models.utcnow, models.new_task_id

TABLE_NAME = "apflow_tasks"
SCHEMA_VERSION = 1


class UTCDateTime(TypeDecorator):
    """A DateTime stored as UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | float | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, float):  # seconds since the epoch
            value = datetime.fromtimestamp(value, tz=timezone.utc)
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # some drivers hand back text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of apflow_nb's tables."""


class TaskModel(Base):
    """One task: what to run (name / executor, inputs), how it relates (parent, dependencies),
    and what happened (status, progress, result, error, timestamps)."""

    __tablename__ = TABLE_NAME
    # lets a subclass that repeats __tablename__ extend this table instead of clashing with it
    __table_args__ = {"extend_existing": True}

    id = Column(String(255), primary_key=True, default=new_task_id)
    # the name the user gave the task (a task array's "id"): ids are unique per store, keys repeat per run
    key = Column(String(255), nullable=True, index=True)
    parent_id = Column(String(255), nullable=True, index=True)
    root_id = Column(String(255), nullable=True, index=True)
    user_id = Column(String(255), nullable=True, index=True)
    name = Column(String(255), nullable=False, index=True)
    status = Column(String(50), nullable=False, default="pending", index=True)
    priority = Column(Integer, nullable=False, default=2)
    dependencies = Column(JSON, nullable=True)
    inputs = Column(JSON, nullable=True)
    params = Column(JSON, nullable=True)
    result = Column(JSON, nullable=True)
    schemas = Column(JSON, nullable=True)
    error = Column(Text, nullable=True)
    progress = Column(Float, nullable=False, default=0.0)
    has_children = Column(Boolean, nullable=False, default=False)
    original_task_id = Column(String(255), nullable=True)
    has_copy = Column(Boolean, nullable=False, default=False)
    owner = Column(String(255), nullable=True)
    options = Column(JSON, nullable=True)  # how to run it: cache, retries, retry_delay, retry_jitter, timeout
    attempts = Column(Integer, nullable=True)  # attempts the last run made (retries + 1 at most)
    cached_from = Column(String(255), nullable=True)  # the task whose cached result this one reused
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    started_at = Column(UTCDateTime, nullable=True)
    updated_at = Column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)
    completed_at = Column(UTCDateTime, nullable=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass that repeats __tablename__ extends the same table (the seed's example works
        # as written, and re-running a notebook cell that defines it works too).
        if cls.__dict__.get("__tablename__") == TABLE_NAME and "__table_args__" not in cls.__dict__:
            cls.__table_args__ = {"extend_existing": True}
            table = TaskModel.__table__
            for key, value in list(cls.__dict__.items()):
                if isinstance(value, Column):  # a redefined column drops its old index first
                    name = value.name or key
                    for index in list(table.indexes):
                        if [c.name for c in index.columns] == [name]:
                            table.indexes.discard(index)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*already contains a class with the same class name.*")
            super().__init_subclass__(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Every column as a dict (custom columns of subclasses included)."""
        return {c.key: getattr(self, c.key, None) for c in self.__table__.columns}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id!r} name={self.name!r} status={self.status!r}>"


EVENT_TABLE_NAME = "apflow_task_events"

# Append-only log of every lifecycle event (progress coalesced per task and flush), written in
# the same transaction as the task rows it describes.
task_events = Table(
    EVENT_TABLE_NAME, Base.metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_type", String(32), nullable=False),
    Column("task_id", String(255), nullable=True),
    Column("root_id", String(255), nullable=True),
    Column("name", String(255), nullable=True),
    Column("status", String(50), nullable=True),
    Column("progress", Float, nullable=True),
    Column("timestamp", UTCDateTime, nullable=False),
    Column("payload", JSON, nullable=True),
    Index("ix_apflow_task_events_root_ts", "root_id", "timestamp"),
    Index("ix_apflow_task_events_task", "task_id"),
)

# Who runs a tree now (a lease with a heartbeat) and what other processes asked it to cancel: storage/runs.py
runs = Table(
    "apflow_runs", Base.metadata,
    Column("root_id", String(255), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("status", String(50), nullable=True),
)

cancel_requests = Table(
    "apflow_cancel_requests", Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("root_id", String(255), nullable=False, index=True),
    Column("task_id", String(255), nullable=True),  # None: the whole tree
    Column("reason", String(1000), nullable=True),
    Column("requested_by", String(255), nullable=True),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("handled_at", UTCDateTime, nullable=True),
)

# The result cache (storage/cache.py): one row per cached result, shared by every process using the store
cache_table = Table(
    "apflow_cache", Base.metadata,
    Column("key", String(64), primary_key=True),
    Column("executor_id", String(255), nullable=False, index=True),
    Column("fingerprint", String(64), nullable=False),
    Column("result", JSON, nullable=True),
    Column("task_id", String(255), nullable=True),  # the task that computed it
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
)

# The key catalog (storage/key_catalog.py): which keys each executor's inputs and results have ever had, so
# history() gives the same columns for the same executor whatever rows a filter matched
key_catalog = Table(
    "apflow_result_keys", Base.metadata,
    Column("executor", String(255), primary_key=True),
    Column("kind", String(16), primary_key=True),  # inputs | result
    Column("path", String(500), primary_key=True),  # the keys from the top, as JSON text
    Column("shape", String(8), primary_key=True),  # leaf | wide
)


_task_model_class: type[TaskModel] = TaskModel


def set_task_model_class(model_class: type[TaskModel] | None) -> None:
    """Use ``model_class`` (a TaskModel subclass) for tasks created from now on; None restores the default."""
    global _task_model_class
    if model_class is None:
        _task_model_class = TaskModel
        return
    if not (isinstance(model_class, type) and issubclass(model_class, TaskModel)):
        raise TypeError(f"set_task_model_class expects a TaskModel subclass, got {model_class!r}. "
                        "Subclass apflow_nb.core.storage.sqlalchemy.models.TaskModel.")
    if model_class.__table__.name != TABLE_NAME:
        raise ValueError(f"{model_class.__name__} maps table {model_class.__table__.name!r}; "
                         f"set __tablename__ = {TABLE_NAME!r}.")
    _task_model_class = model_class


def get_task_model_class() -> type[TaskModel]:
    """The TaskModel class in use."""
    return _task_model_class


_BASE_COLUMNS = frozenset(TaskModel.__table__.columns.keys())
_BASE_INDEXES = frozenset(TaskModel.__table__.indexes)


def restore_task_table() -> None:
    """Forget the columns and indexes custom TaskModel subclasses added to the shared table definition,
    and go back to the default model (tests, and notebooks that redefine their model from scratch).

    The store's table is not changed: this is about the Python definition only.
    """
    set_task_model_class(None)
    table = TaskModel.__table__
    for name in set(table.columns.keys()) - _BASE_COLUMNS:
        table._columns.remove(table.columns[name])  # SQLAlchemy has no public way to drop a Column
    for index in set(table.indexes) - _BASE_INDEXES:
        table.indexes.discard(index)
