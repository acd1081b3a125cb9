"""Starting and stopping real servers for tests: a free port, a readiness wait, a clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import IO, Callable, Iterator, Mapping


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float, log: IO[str]) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {open(log.name).read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"server at {url} not ready after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's whole process group, SIGKILL it if it does not exit in 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextlib.contextmanager
def served(command: Callable[[int], list[str]], log_path: Path, env: Mapping[str, str] | None = None,
           timeout: float = 300) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `command(port)` as a server on 127.0.0.1 with its output in `log_path`; yields
    (base url ending in /v1, the process) once /health answers, and stops it afterwards."""
    port = free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command(port), stdout=log, stderr=subprocess.STDOUT, env=dict(env or os.environ), start_new_session=True)
        try:
            wait_ready(f"http://127.0.0.1:{port}/health", proc, timeout, log)
            yield f"http://127.0.0.1:{port}/v1", proc
        finally:
            stop(proc)
