"""Running a candidate program and its tests, never in the main process.

A run starts `python -I -B launcher.py` in a new session (no preexec_fn: the parent holds a
multithreaded engine). The launcher isolates and limits the run and becomes the test runner
(harness.py), which loads the candidate in a process of its own (host.py) and calls into it.
A run passes only when the runner's verdict arrives on its own pipe carrying this run's random
token: exit statuses and printed text count for nothing, so a candidate that exits early,
patches the asserts or prints a success marker fails. Output is read with a cap, a wall-clock
timeout kills the run, and the pids cgroup (where one can be made) kills whatever is left.

As root the run gets new mount, network and pid namespaces and unprivileged uids. Without root
there is no network or file isolation: the candidate can reach the network and read whatever the
user can; a warning says so once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from .cgroup import PidsGroup

log = logging.getLogger(__name__)
_LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py")
_TAIL = 4000
_warned = False


class SandboxConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(10.0, gt=0)
    cpu_s: int = Field(10, ge=1)
    memory_mb: int = Field(1024, ge=64)
    max_processes: int = Field(32, ge=1)
    max_file_mb: int = Field(16, ge=1)
    max_output_kb: int = Field(1024, ge=1)  # more printed output than this kills the run
    isolate: bool = True  # namespaces and unprivileged uids; needs root


@dataclass(frozen=True)
class SandboxRun:
    passed: bool
    status: str  # passed | failed | timeout | killed | error
    returncode: int | None  # the launcher's exit status
    output: str  # the tail of everything the candidate and the tests printed
    detail: str = ""  # why it failed, as the test runner saw it


class _Capped:
    """Reads a stream to its end, keeping a tail; sets `over` past `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit, self.seen, self.tail, self.over = limit, 0, b"", asyncio.Event()

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.seen += len(chunk)
            self.tail = (self.tail + chunk)[-_TAIL * 4 :]
            if self.seen > self.limit:
                self.over.set()
                return


def _warn_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "code sandbox without root: no network or file isolation (the candidate keeps the network "
            "and can read what this user can); only time, memory, process and output limits apply"
        )


async def run_program(source: str, cfg: SandboxConfig | None = None, tests: str = "") -> SandboxRun:
    """Run `source` as the candidate's module, then `tests` (Python statements that call the
    candidate's functions by name). Passed = every test statement ran without raising."""
    cfg = cfg or SandboxConfig()
    isolate = cfg.isolate and os.geteuid() == 0
    if not isolate:
        _warn_once()
    token = secrets.token_hex(16)
    workdir = None if isolate else tempfile.mkdtemp(prefix="ponder-code-")
    group = PidsGroup.create(cfg.max_processes + 4)  # the launcher and the runner count too
    spec = {
        "token": token, "source": source, "tests": tests, "isolate": isolate, "workdir": workdir,
        "cgroup_procs": group.procs, "memory_mb": cfg.memory_mb, "cpu_s": cfg.cpu_s,
        "max_processes": cfg.max_processes, "max_file_mb": cfg.max_file_mb, "hide": _homes(),
    }
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-B", _LAUNCHER, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True, env={},
        )
        try:
            return await _supervise(proc, json.dumps(spec).encode(), token, cfg)
        finally:
            _kill_group(proc.pid)
            await proc.wait()
    finally:
        group.destroy()
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)


async def _supervise(proc: asyncio.subprocess.Process, spec: bytes, token: str, cfg: SandboxConfig) -> SandboxRun:
    assert proc.stdin and proc.stdout and proc.stderr
    printed = _Capped(cfg.max_output_kb * 1024)
    verdict = _Capped(1 << 20)
    proc.stdin.write(spec)
    await proc.stdin.drain()
    proc.stdin.close()
    reading = asyncio.gather(printed.drain(proc.stderr), verdict.drain(proc.stdout), proc.wait())
    reading.add_done_callback(lambda f: f.cancelled() or f.exception())  # a cancelled read is no error
    over = asyncio.ensure_future(printed.over.wait())
    try:
        done, _ = await asyncio.wait({reading, over}, timeout=cfg.timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        over.cancel()
    text = printed.tail.decode("utf-8", "replace")[-_TAIL:]
    if reading not in done:
        _kill_group(proc.pid)
        reading.cancel()
        if over in done and printed.over.is_set():
            return SandboxRun(False, "killed", None, text, f"printed more than {cfg.max_output_kb} KiB")
        return SandboxRun(False, "timeout", None, text, f"no verdict within {cfg.timeout_s} s")
    result = _verdict(verdict.tail, token)
    if result is None:
        status = "error" if proc.returncode == 3 else "failed"
        return SandboxRun(False, status, proc.returncode, text, "no verdict from the test runner")
    passed = result.get("passed") is True
    return SandboxRun(passed, str(result.get("status", "failed")), proc.returncode, text, str(result.get("detail", "")))


def _verdict(raw: bytes, token: str) -> dict | None:
    """The runner's verdict, framed as in wire.py, if it carries this run's token."""
    if len(raw) < 8:
        return None
    size = int.from_bytes(raw[:8], "big")
    try:
        result = json.loads(raw[8 : 8 + size])
    except ValueError:
        return None
    if not isinstance(result, dict) or not secrets.compare_digest(str(result.get("token", "")), token):
        return None
    return result


def _homes() -> list[str]:
    """The parent's home, when it is not under a folder the launcher hides anyway."""
    home = os.path.realpath(os.path.expanduser("~"))
    return [home] if home not in ("/", "") and os.path.isdir(home) else []


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
