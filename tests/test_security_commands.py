"""command_executor: the allowlist cannot be bypassed with a look-alike program, commands get no credentials in
their environment, and a command that ends just as its timeout fires gives a clean result."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from apflow_nb.executors.shell import CommandExecutor, scrubbed_environment
from tests.waiting import until

FAKE = "#!/bin/sh\necho PWNED\n"


@pytest.fixture
def commands(monkeypatch):
    monkeypatch.setenv("APFLOW_NB_ENABLE_COMMANDS", "1")
    monkeypatch.setenv("APFLOW_NB_COMMAND_ALLOWLIST", "echo")


def _fake_echo(folder):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "echo"
    path.write_text(FAKE)
    path.chmod(0o755)
    return path


async def _run(inputs):
    return await CommandExecutor().execute({"timeout": 10, "cwd": None, **inputs})


async def test_an_allowlisted_name_runs_the_program_on_path(commands):
    out = await _run({"command": "echo hi"})
    assert out["success"] and out["stdout"] == "hi\n"


@pytest.mark.parametrize("how", ["absolute", "relative with cwd", "dot-dot", "symlink", "relative PATH entry"])
async def test_a_lookalike_echo_never_runs(commands, tmp_path, monkeypatch, how):
    fake = _fake_echo(tmp_path / "x")
    if how == "absolute":
        inputs = {"command": [str(fake), "hi"]}
    elif how == "relative with cwd":
        inputs = {"command": "./echo hi", "cwd": str(fake.parent)}
    elif how == "dot-dot":
        inputs = {"command": f"{tmp_path}/x/../x/echo hi"}
    elif how == "symlink":
        (tmp_path / "bin").mkdir()
        os.symlink(fake, tmp_path / "bin" / "echo")
        inputs = {"command": f"{tmp_path}/bin/echo hi"}
    else:  # "." first on PATH: a bare name must not find ./echo in the command's cwd
        monkeypatch.setenv("PATH", "." + os.pathsep + os.environ["PATH"])
        inputs = {"command": "echo hi", "cwd": str(fake.parent)}
    out = await _run(inputs)
    assert "PWNED" not in str(out)
    if how == "relative PATH entry":
        assert out["stdout"] == "hi\n"  # the real echo, found through the absolute PATH entries
    else:
        assert out["status"] == "failed" and "is not on APFLOW_NB_COMMAND_ALLOWLIST" in out["error"]


async def test_an_allowlisted_path_runs_exactly_that_program(commands, tmp_path, monkeypatch):
    fake = _fake_echo(tmp_path / "x")
    monkeypatch.setenv("APFLOW_NB_COMMAND_ALLOWLIST", f"echo,{tmp_path}/x/../x/echo")
    out = await _run({"command": "./echo", "cwd": str(fake.parent)})
    assert out["stdout"] == "PWNED\n"
    out = await _run({"command": "/bin/echo hi"})  # not itself listed (only the bare name is)
    assert out["status"] == "failed"


async def test_commands_get_no_credentials_in_their_environment(commands, monkeypatch):
    from apflow_nb.core.storage.urls import remember_password

    monkeypatch.setenv("APFLOW_NB_COMMAND_ALLOWLIST", "env")
    secrets = {"APFLOW_NB_DATABASE_URL": "postgresql://ann:hunter2pw@db/x", "PGPASSWORD": "pgpw1234",
               "GITHUB_TOKEN": "ghtoken99", "AWS_SECRET_ACCESS_KEY": "awskey77", "MY_CACHE": "redis://:redispw5@h:6379",
               "LOOKS_HARMLESS": "kernelpw42"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEEP_ME", "plain value")
    remember_password("kernelpw42")  # a password this process saw in a store URL
    out = await _run({"command": "env"})
    assert out["success"]
    for name, value in secrets.items():
        assert name not in out["stdout"] and value not in out["stdout"]
    assert "KEEP_ME=plain value" in out["stdout"] and "PATH=" in out["stdout"]
    assert set(scrubbed_environment({"HOME": "/h", "DATABASE_URL": "x", "SSH_AUTH_SOCK": "/s"})) == {"HOME"}


def _children():
    found = set()
    for t in os.listdir("/proc/self/task"):
        try:
            found |= set(open(f"/proc/self/task/{t}/children").read().split())
        except OSError:
            pass
    return found


async def test_a_command_ending_as_its_timeout_fires_gives_a_clean_result(commands, monkeypatch):
    """The loop is blocked (on purpose) while the command exits and its timeout falls due; when it resumes, both
    are ready at once. The old code then killed a process asyncio had already let go of: ProcessLookupError."""
    monkeypatch.setenv("APFLOW_NB_COMMAND_ALLOWLIST", "sleep")
    for _ in range(5):
        before = _children()
        running = asyncio.ensure_future(_run({"command": ["sleep", "0.1"], "timeout": 0.15}))
        await until(lambda: _children() - before)
        time.sleep(0.5)  # block the loop: the exit (at 0.1 s) and the timeout (0.15 s) are both due on resume
        out = await running
        assert out == {"success": True, "return_code": 0, "stdout": "", "stderr": ""}


def _processes_mentioning(text):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


async def test_a_timeout_kills_the_command_and_what_it_started(commands, monkeypatch, tmp_path):
    monkeypatch.setenv("APFLOW_NB_COMMAND_ALLOWLIST", "sh")
    marker = tmp_path / "alive"
    script = f"(sleep 30; touch {marker}) & sleep 30"
    started = time.monotonic()
    out = await _run({"command": ["sh", "-c", script], "timeout": 0.3})
    assert out["status"] == "failed" and out["timeout"] is True and time.monotonic() - started < 5
    await until(lambda: not _processes_mentioning(str(marker)), timeout=5)  # the background part died too
