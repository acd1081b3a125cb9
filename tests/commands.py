"""The installed `ponder` script, run as a user runs it: a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PONDER = shutil.which("ponder", path=str(Path(sys.executable).parent)) or "ponder"


def ponder(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PONDER, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})
