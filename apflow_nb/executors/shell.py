"""command_executor: runs a command, only when the user enabled it.

Off unless ``APFLOW_NB_ENABLE_COMMANDS=1``; ``APFLOW_NB_COMMAND_ALLOWLIST="echo,ls"`` restricts
which programs may run: a bare name there is looked up on PATH (absolute PATH entries only) and the
program found is run by its absolute path; a command written as a path (``/usr/bin/echo``,
``./tool``) runs only when that path itself (resolved, symlinks followed) is on the allowlist.
The command is split with shlex and run without a shell, in its own process group (a timeout or a
cancel kills the group), with a scrubbed environment: see :func:`scrubbed_environment`.
A non-zero exit completes the task with ``success: false``; a timeout fails it.
"""
from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
from typing import Any

from apflow_nb.core.interfaces.executable_task import ExecutableTask

ENABLE_ENV = "APFLOW_NB_ENABLE_COMMANDS"
ALLOW_ENV = "APFLOW_NB_COMMAND_ALLOWLIST"
PIPE_GRACE = 2.0  # seconds to collect output after the program ended or was killed
REMOVED_NAMES = ("APFLOW_NB_DATABASE_URL", "DATABASE_URL")
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|AUTH|"
                         r"SESSION_?KEY|DSN|DATABASE_URL|_URI$|_URL$", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*:[^@\s/]+@")


def scrubbed_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a command gets: this process's, minus anything that may hold a credential.

    Removed: ``APFLOW_NB_DATABASE_URL`` and ``DATABASE_URL``; every variable whose name mentions a
    password, secret, token, credential, auth, API/private/access/session key, DSN or ends in
    ``_URL``/``_URI`` (``PGPASSWORD``, ``AWS_SECRET_ACCESS_KEY``, ``GITHUB_TOKEN``, ...); every
    variable whose value holds a URL with a password (``scheme://user:password@``) or a password
    this process has seen in a store URL.
    """
    from apflow_nb.core.storage.urls import MASK, scrub

    env = dict(os.environ if environ is None else environ)
    out = {}
    for name, value in env.items():
        if name in REMOVED_NAMES or SECRET_NAME.search(name) or _URL_PASSWORD.search(value):
            continue
        if MASK not in value and scrub(value) != value:  # holds a password we know of
            continue
        out[name] = value
    return out


def _allowed(argv0: str, allow: list[str], env: dict[str, str], cwd: str | None) -> tuple[str | None, str]:
    """(the absolute program to run, "") when ``argv0`` may run, else (None, why not)."""
    names = [a for a in allow if os.sep not in a]
    paths = {os.path.realpath(os.path.expanduser(a)) for a in allow if os.sep in a}
    listed = f"{ALLOW_ENV} ({', '.join(allow)})"
    if os.sep not in argv0:
        if allow and argv0 not in names:
            return None, f"{argv0!r} is not in {listed}"
        search = os.pathsep.join(p for p in env.get("PATH", os.defpath).split(os.pathsep) if os.path.isabs(p))
        found = shutil.which(argv0, path=search)
        if found is None:
            return None, f"{argv0!r} was not found on PATH (absolute PATH entries only)"
        return os.path.abspath(found), ""
    full = os.path.realpath(os.path.join(cwd or os.getcwd(), os.path.expanduser(argv0)))
    if allow and full not in paths:
        return None, (f"{argv0!r} (that is {full}) is not on {listed}: a command given as a path runs only "
                      f"when that path itself is allowlisted; a bare name is looked up on PATH")
    return full, ""


def _kill_group(proc: Any) -> None:
    """SIGKILL the command's process group; nothing to do when it is already gone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:  # it exited (and was reaped) meanwhile
            pass


class CommandExecutor(ExecutableTask):
    """Run ``inputs["command"]`` (a string or a list) and return its exit code and output."""

    id = "command_executor"
    name = "Command"
    description = "Runs a program (disabled unless APFLOW_NB_ENABLE_COMMANDS=1)"

    def get_input_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "command": {"type": ["string", "array"], "items": {"type": "string"}},
                "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 60},
                "cwd": {"type": ["string", "null"], "default": None},
            },
            "required": ["command"],
        }

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        if os.environ.get(ENABLE_ENV, "").lower() not in ("1", "true", "yes"):
            return {"status": "failed", "error": f"command_executor is disabled; set {ENABLE_ENV}=1 in the "
                                                 f"environment to allow running programs"}
        command = inputs["command"]
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not argv:
            return {"status": "failed", "error": "empty command"}
        allow = [a.strip() for a in os.environ.get(ALLOW_ENV, "").split(",") if a.strip()]
        env = scrubbed_environment()
        program, why = _allowed(argv[0], allow, env, inputs.get("cwd"))
        if program is None:
            return {"status": "failed", "error": why}
        proc = await asyncio.create_subprocess_exec(program, *argv[1:], stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, cwd=inputs.get("cwd"),
                                                    env=env, start_new_session=True)
        return await self._collect(proc, inputs["timeout"])

    async def _collect(self, proc: Any, timeout: float) -> dict[str, Any]:
        """Wait for the program (at most ``timeout`` s), never cancelling the read of its output."""
        output = asyncio.ensure_future(proc.communicate())
        try:
            done, _ = await asyncio.wait({output}, timeout=timeout)
            killed = False
            if not done:
                if proc.returncode is None:  # still running: kill it (it may exit at this very moment)
                    _kill_group(proc)
                    killed = True
                done, _ = await asyncio.wait({output}, timeout=PIPE_GRACE)
                if not done:  # a background process it started still holds its output open
                    output.cancel()
                    _kill_group(proc)
                    return {"status": "failed", "timeout": True,
                            "error": f"command timed out after {timeout} s (its output stayed open)"}
            out, err = output.result()
        except asyncio.CancelledError:
            _kill_group(proc)
            output.cancel()
            raise
        if killed and proc.returncode == -signal.SIGKILL:
            return {"status": "failed", "error": f"command timed out after {timeout} s", "timeout": True}
        return {"success": proc.returncode == 0, "return_code": proc.returncode,
                "stdout": out.decode(errors="replace"), "stderr": err.decode(errors="replace")}
