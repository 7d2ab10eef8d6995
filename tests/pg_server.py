"""A throwaway PostgreSQL server for the tests, started from Debian's binaries on loopback.

``APFLOW_NB_TEST_PG_URL`` points the tests at an existing server instead.

The server authenticates TCP connections with scram-sha-256 passwords, as a real deployment does: the tests
connect as the role ``apflow`` (owner of the database ``apflow_test``) with a fresh random password that holds
URL-special characters (``@``, ``:``, ``/``, ``%``), percent-encoded in the returned URL. Only the unix socket in
the server's own private directory trusts local connections (the set-up steps use it, never the tests).

As root (PostgreSQL refuses to run as root) the server's files belong to the ``postgres`` system user, which Debian's
``postgresql`` package creates, and ``initdb``/``pg_ctl`` run through ``runuser -u postgres --``. Only the standard
library and psycopg are used.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from typing import Callable

MISSING = ("PostgreSQL server binaries (initdb, pg_ctl) not found: install them with "
           "`apt-get install postgresql` (make sysdeps does it), or set APFLOW_NB_TEST_PG_URL to a server's URL.")
DATABASE = "apflow_test"
ROLE = "apflow"


def new_password() -> str:
    """A random password with the characters a URL must percent-encode."""
    import secrets

    return f"pw-{secrets.token_hex(8)}@:/%x"

_WATCHDOG = """
import shutil, subprocess, sys
base, pg_ctl = sys.argv[1], sys.argv[2:]
sys.stdin.buffer.read()
quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    if subprocess.run(pg_ctl + ["-m", "fast", "-t", "20", "stop"], timeout=30, **quiet).returncode != 0:
        subprocess.run(pg_ctl + ["-m", "immediate", "stop"], timeout=30, **quiet)
finally:
    shutil.rmtree(base, ignore_errors=True)
"""


def postgres_missing_message() -> str:
    return MISSING


def _server_bins() -> tuple[str, str] | None:
    """initdb and pg_ctl from one directory (one PostgreSQL version): PATH's first, then the newest Debian one."""
    dirs = [os.path.dirname(os.path.realpath(p)) for p in filter(None, [shutil.which("initdb")])]
    dirs += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True,
                   key=lambda d: tuple(int(x) if x.isdigit() else -1 for x in d.split("/")[4].split(".")))
    for d in dirs:
        initdb, pg_ctl = os.path.join(d, "initdb"), os.path.join(d, "pg_ctl")
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb, pg_ctl
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _others_can_enter(path: str) -> bool:
    """True when every directory on the way to path is searchable by other users (the postgres user, here)."""
    path = os.path.realpath(path)
    while True:
        try:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def start_postgres() -> tuple[str, Callable[[], None]]:
    """Start a server; return its SQLAlchemy URL and a function that stops it and removes its files.

    Raises RuntimeError with :func:`postgres_missing_message` when the server binaries are not installed, and
    RuntimeError with initdb's output or the server log when the server does not come up.
    """
    url = os.environ.get("APFLOW_NB_TEST_PG_URL")
    if url:
        return url, lambda: None
    bins = _server_bins()
    if bins is None:
        raise RuntimeError(MISSING)
    initdb, pg_ctl = bins
    try:
        import psycopg
    except ImportError as exc:
        raise RuntimeError("psycopg is missing: install the `postgres` extra (pip install -e '.[postgres]')") from exc

    as_user: list[str] = []
    parent = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root, and there is no `postgres` system user to run the server as: "
                               "install Debian's `postgresql` package (it creates the user), or set "
                               "APFLOW_NB_TEST_PG_URL to a server's URL") from None
        as_user = ["runuser", "-u", "postgres", "--"]
        if not _others_can_enter(tempfile.gettempdir()):
            parent = "/tmp"  # the postgres user could not reach a data directory under $TMPDIR
    base = tempfile.mkdtemp(prefix="apflow-pg-", dir=parent)
    data, sock, log = os.path.join(base, "data"), os.path.join(base, "sock"), os.path.join(base, "log")
    os.makedirs(sock)
    if as_user:
        subprocess.run(["chown", "-R", "postgres:postgres", base], check=True)
        os.chmod(base, 0o755)

    def pg_ctl_run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(as_user + [pg_ctl, "-D", data, *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)

    # The watchdog stops the server and removes its files when its stdin reaches EOF: when stop() closes the pipe,
    # or when this process dies without running its teardown (killed by a timeout, SIGKILL), so no server outlives
    # the test session. Its own session keeps a Ctrl-C or a process-group kill from taking it down first.
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, base, *as_user, pg_ctl, "-D", data],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    def stop() -> None:
        if watchdog.stdin and not watchdog.stdin.closed:
            watchdog.stdin.close()
        try:
            watchdog.wait(timeout=60)
        except subprocess.TimeoutExpired:
            watchdog.kill()
            pg_ctl_run("-m", "immediate", "stop", timeout=30)
        shutil.rmtree(base, ignore_errors=True)

    superuser_password, password = new_password(), new_password()
    pwfile = os.path.join(base, "pwfile")
    with open(os.open(pwfile, os.O_CREAT | os.O_WRONLY, 0o600), "w") as f:
        f.write(superuser_password + "\n")
    if as_user:
        subprocess.run(["chown", "postgres:postgres", pwfile], check=True)
    try:
        done = subprocess.run(
            as_user + [initdb, "-D", data, "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                       "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {done.returncode}):\n{done.stdout}")
        os.unlink(pwfile)
        port = 0
        for _attempt in range(3):  # the free port can be taken between choosing it and the server binding it
            port = _free_port()
            opts = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            started = pg_ctl_run("-o", opts, "-l", log, "-w", "-t", "60", "start", timeout=90)
            if started.returncode == 0:
                break
        else:
            raise RuntimeError(f"PostgreSQL did not start (pg_ctl: {started.stdout.strip()}); server log:\n"
                               f"{_tail(log)}")

        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=superuser_password,
                                     dbname="postgres", connect_timeout=3, autocommit=True) as conn:
                    from psycopg import sql

                    conn.execute(sql.SQL("SET password_encryption = 'scram-sha-256'"))
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(ROLE), sql.Literal(password)))
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(DATABASE), sql.Identifier(ROLE)))
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL on 127.0.0.1:{port} refuses connections: {exc}\n"
                                       f"server log:\n{_tail(log)}") from exc
                time.sleep(0.1)
    except BaseException:
        stop()
        raise
    from urllib.parse import quote

    return f"postgresql+psycopg://{ROLE}:{quote(password, safe='')}@127.0.0.1:{port}/{DATABASE}", stop
