"""Running a candidate program and its tests, never in the main process.

A run starts `python -I -B launcher.py` in a new session (no preexec_fn: the parent holds a
multithreaded engine). The launcher isolates and limits the run and becomes the test runner
(harness.py), which loads the candidate in a process of its own (host.py) and calls into it.
A run passes only when the runner's verdict arrives on its own pipe carrying this run's random
token: exit statuses and printed text count for nothing, so a candidate that exits early,
patches the asserts or prints a success marker fails. Output is read with a cap, a wall-clock
timeout kills the run, and the pids cgroup (where one can be made) kills whatever is left.

As root the run gets new mount, network and pid namespaces and unprivileged uids. Without root
(or where a container refuses namespaces) there is no network or file isolation: the candidate
runs as this user, can reach the network and read, or signal, whatever the user can (this process
included, so a deliberate attack could forge a verdict); a warning says so once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Sequence

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


class _Watch(asyncio.SubprocessProtocol):
    """Collects one run's pipes as they arrive: a tail of the printed output (stderr) with a
    cap on its total, and the verdict (stdout), which only the launcher and the runner hold."""

    def __init__(self, limit: int) -> None:
        self.limit, self.seen, self.tail, self.verdict = limit, 0, b"", b""
        self.over, self.answered, self.quiet, self.exited = (asyncio.Event() for _ in range(4))

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self.verdict = (self.verdict + data)[: 1 << 20]
            return
        self.seen += len(data)
        self.tail = (self.tail + data)[-_TAIL * 4 :]
        if self.seen > self.limit:
            self.over.set()

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        (self.answered if fd == 1 else self.quiet).set()

    def process_exited(self) -> None:
        self.exited.set()


def _warn_once(why: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "code sandbox %s: no network or file isolation (the candidate keeps the network and can read "
            "and signal what this user can, this process included); only time, memory, process and "
            "output limits apply", why,
        )


@functools.cache
def _can_isolate() -> bool:
    """Whether this machine grants the namespaces, mounts and uid change a run needs (root is not
    enough in a container without CAP_SYS_ADMIN), tried once in a throwaway launcher."""
    if os.geteuid() != 0:
        return False
    try:
        done = subprocess.run([sys.executable, "-I", "-B", _LAUNCHER, "--probe"], capture_output=True, timeout=60, env={})
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


async def run_program(
    source: str, cfg: SandboxConfig | None = None, tests: str = "", subjects: Sequence[str] = (),
) -> SandboxRun:
    """Run `source` as the candidate's module, then `tests` (Python statements that call the
    candidate's functions by name). Passed = every test statement ran without raising. In the
    tests, the candidate's names never hide builtins or stdlib modules, except `subjects` (the
    functions under test)."""
    cfg = cfg or SandboxConfig()
    isolate = cfg.isolate and await asyncio.to_thread(_can_isolate)
    if not isolate:
        _warn_once("without root" if os.geteuid() != 0 else "without namespaces")
    token = secrets.token_hex(16)
    workdir = None if isolate else tempfile.mkdtemp(prefix="ponder-code-")
    group = PidsGroup.create(cfg.max_processes + 4)  # the launcher and the runner count too
    spec = {
        "token": token, "source": source, "tests": tests, "subjects": list(subjects), "isolate": isolate, "workdir": workdir,
        "cgroup_procs": group.procs, "memory_mb": cfg.memory_mb, "cpu_s": cfg.cpu_s,
        "max_processes": cfg.max_processes, "max_file_mb": cfg.max_file_mb, "hide": _homes(),
    }
    loop = asyncio.get_running_loop()
    try:
        transport, watch = await loop.subprocess_exec(
            lambda: _Watch(cfg.max_output_kb * 1024), sys.executable, "-I", "-B", _LAUNCHER,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env={},
        )
        try:
            return await _supervise(transport, watch, json.dumps(spec).encode(), token, cfg)
        finally:
            _kill_group(transport.get_pid())
            # a process that escaped the group may still hold the output pipe: do not wait on it
            await _wait(watch.exited, 2.0)
            transport.close()
    finally:
        # killing the group waits for the kernel to reap it and the folder may be large: off the loop
        await asyncio.to_thread(_clean, group, workdir)


def _clean(group: PidsGroup, workdir: str | None) -> None:
    group.destroy()
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)


async def _supervise(transport: asyncio.SubprocessTransport, watch: _Watch, spec: bytes, token: str, cfg: SandboxConfig) -> SandboxRun:
    stdin = transport.get_pipe_transport(0)
    stdin.write(spec)
    stdin.close()
    ended = await _wait_any((watch.answered, watch.over), cfg.timeout_s)
    if watch.over.is_set():
        return SandboxRun(False, "killed", None, _text(watch), f"printed more than {cfg.max_output_kb} KiB")
    if not ended:
        return SandboxRun(False, "timeout", None, _text(watch), f"no verdict within {cfg.timeout_s} s")
    await _wait(watch.quiet, 1.0)  # the last output, unless something that escaped holds the pipe
    code = transport.get_returncode()
    result = _verdict(watch.verdict, token)
    if result is None:
        status = "error" if code == 3 else "failed"
        return SandboxRun(False, status, code, _text(watch), "no verdict from the test runner")
    passed = result.get("passed") is True
    return SandboxRun(passed, str(result.get("status", "failed")), code, _text(watch), str(result.get("detail", "")))


def _text(watch: _Watch) -> str:
    return watch.tail.decode("utf-8", "replace")[-_TAIL:]


async def _wait(event: asyncio.Event, timeout_s: float) -> bool:
    return await _wait_any((event,), timeout_s)


async def _wait_any(events: tuple[asyncio.Event, ...], timeout_s: float) -> bool:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    return bool(done)


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
