"""The user's terminal during a command that starts engines: a few lines of ours, nothing else.

Quiet (the default): file descriptors 1 and 2 point at a log file, so vLLM, torch and
transformers write there however they write (Python logging, warnings, C++ prints, tqdm bars,
shutdown noise), and ponder's own lines go to copies of the original descriptors taken first.
Verbose (`-v`): nothing is moved; the engine's output shows live.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO


class Terminal:
    def __init__(self, log: Path | None = None) -> None:
        """`log`: where the engine's output goes; None keeps it on the terminal."""
        self.log = log
        self.settled = False  # the log has reached its run directory
        if log is None:
            self.out: TextIO = sys.stdout
            self.err: TextIO = sys.stderr
            return
        sys.stdout.flush()
        sys.stderr.flush()
        self.out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
        self.err = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8")
        log.parent.mkdir(parents=True, exist_ok=True)
        self._point_at(log, append=False)

    def say(self, line: str) -> None:
        """A status line (stderr)."""
        print(line, file=self.err, flush=True)

    def show(self, line: str) -> None:
        """A result line (stdout)."""
        print(line, file=self.out, flush=True)

    def move_log(self, dest: Path) -> None:
        """Continue the log at `dest` (appending: a resumed run keeps its earlier log), keeping
        what was written so far."""
        if self.log is None or self.settled:  # several runs on one engine: the first keeps the log
            return
        old = self.log
        with dest.open("ab") as f, old.open("rb") as src:
            f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
            shutil.copyfileobj(src, f)
            copied = src.tell()
        self._point_at(dest, append=True)
        with dest.open("ab") as f, old.open("rb") as src:  # whatever landed in between
            src.seek(copied)
            shutil.copyfileobj(src, f)
        old.unlink()
        self.settled = True

    def _point_at(self, path: Path, append: bool) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        self.log = path


def log_file(command: str) -> Path:
    """A command's engine log before (or without) a run directory: under $PONDER_HOME/logs."""
    from ...backends.models import ponder_home

    return ponder_home() / "logs" / (f"{command}.log" if command != "run" else f"run-{os.getpid()}.log")
