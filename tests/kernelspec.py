"""A python3 kernelspec that runs this interpreter, for tests that start real kernels (nbclient)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable


def install_test_kernel(root: Path, setenv: Callable[[str, str], None]) -> None:
    """Write the kernelspec under ``root`` and put ``root`` first on JUPYTER_PATH (through ``setenv``)."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec_dir = root / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "apflow_nb test kernel", "language": "python"}))
    setenv("JUPYTER_PATH", str(root))
    setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable
