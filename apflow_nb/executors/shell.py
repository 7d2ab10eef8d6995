"""command_executor: runs a command, only when the user enabled it.

Off unless ``APFLOW_NB_ENABLE_COMMANDS=1``; ``APFLOW_NB_COMMAND_ALLOWLIST="echo,ls"`` restricts
which programs may run. The command is split with shlex and run without a shell. A non-zero exit
completes the task with ``success: false``; a timeout fails it.
"""
from __future__ import annotations

import asyncio
import os
import shlex
from typing import Any

from apflow_nb.core.interfaces.executable_task import ExecutableTask

ENABLE_ENV = "APFLOW_NB_ENABLE_COMMANDS"
ALLOW_ENV = "APFLOW_NB_COMMAND_ALLOWLIST"


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
        if allow and os.path.basename(argv[0]) not in allow:
            return {"status": "failed", "error": f"{argv[0]!r} is not in {ALLOW_ENV} ({', '.join(allow)})"}
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, cwd=inputs.get("cwd"))
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=inputs["timeout"])
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return {"status": "failed", "error": f"command timed out after {inputs['timeout']} s", "timeout": True}
        except asyncio.CancelledError:
            proc.kill()
            raise
        return {"success": proc.returncode == 0, "return_code": proc.returncode,
                "stdout": out.decode(errors="replace"), "stderr": err.decode(errors="replace")}
