"""Processes that own runs: ``host:pid:start`` identities, and whether such a process is alive.

The process start time tells a reused pid apart; a zombie (killed, not yet reaped) counts as dead.
"""
from __future__ import annotations

import os
import socket

HOST = socket.gethostname()


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode(errors="replace")
    except OSError:
        return None
    # the command name may hold spaces and parentheses: fields resume after the last ')'
    return data[data.rindex(")") + 2:].split()


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def process_identity(pid: int | None = None) -> str:
    """``host:pid:start`` of this process (or of ``pid``)."""
    pid = os.getpid() if pid is None else pid
    return f"{HOST}:{pid}:{_start_time(pid) or '?'}"


def owner_alive(owner: str) -> bool | None:
    """True/False for an owner on this host; None when it cannot be told (another host, bad format)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != HOST:
        return None
    try:
        pid = int(parts[1])
    except ValueError:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    fields = _stat_fields(pid)
    if fields and fields[0] in ("Z", "X"):
        return False  # a zombie (killed, not yet reaped) or dead
    recorded = parts[2]
    current = fields[19] if fields and len(fields) > 19 else None
    if recorded != "?" and current is not None and current != recorded:
        return False  # the pid was reused by another process
    return True
