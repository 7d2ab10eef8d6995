"""A throwaway PostgreSQL server for the tests, started from Debian's binaries on loopback.

``APFLOW_NB_TEST_PG_URL`` points the tests at an existing server instead.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Callable

MISSING = ("PostgreSQL server binaries (initdb, pg_ctl) not found: install them with "
           "`apt-get install postgresql` (make sysdeps does it), or set APFLOW_NB_TEST_PG_URL to a server's URL.")


def postgres_missing_message() -> str:
    return MISSING


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres() -> tuple[str, Callable[[], None]]:
    """Start a server; return its SQLAlchemy URL and a function that stops it and removes its files."""
    url = os.environ.get("APFLOW_NB_TEST_PG_URL")
    if url:
        return url, lambda: None
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError(MISSING)
    base = tempfile.mkdtemp(prefix="apflow-pg-")
    data, sock = os.path.join(base, "data"), os.path.join(base, "sock")
    os.makedirs(sock)
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        subprocess.run(["chown", "-R", "postgres:postgres", base], check=True)
        os.chmod(base, 0o755)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(as_user + [initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    subprocess.run(as_user + [pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(base, "log"), "-w", "start"],
                   check=True, stdout=subprocess.DEVNULL)

    def stop() -> None:
        subprocess.run(as_user + [pg_ctl, "-D", data, "-m", "immediate", "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)

    import psycopg

    deadline = time.time() + 20
    while True:
        try:
            with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                                 autocommit=True) as conn:
                conn.execute("CREATE DATABASE apflow_test")
            break
        except psycopg.OperationalError:
            if time.time() > deadline:
                stop()
                raise
            time.sleep(0.1)
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/apflow_test", stop
