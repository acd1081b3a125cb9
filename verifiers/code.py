"""Running candidate programs against their tests, never in the main process.

Each run is a fresh `python -I` subprocess in its own temporary directory and session,
with limits set before exec: CPU seconds, address space, file size, open files and process
count. RLIMIT_NPROC does not bind root, so where a pids cgroup can be made (root on cgroup v1)
each run gets its own with `pids.max`, and everything in it is killed afterwards, escapees of
the session included. Where the OS allows it the child also gets an empty network namespace.
A wall-clock timeout kills the run. Infinite loops, fork bombs and memory hogs all come back
as failures; the caller survives.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from ..records.problem import Problem
from .answer import Extracted
from .base import Verdict

_CLONE_NEWNET = 0x40000000
_PIDS_V1 = "/sys/fs/cgroup/pids"


class SandboxConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(10.0, gt=0)
    cpu_s: int = Field(10, ge=1)
    memory_mb: int = Field(1024, ge=64)
    max_processes: int = Field(32, ge=1)
    max_file_mb: int = Field(16, ge=1)
    isolate_network: bool = True


@dataclass(frozen=True)
class RunOutcome:
    passed: bool
    status: str  # passed | failed | timeout | killed | error
    returncode: int | None
    output: str  # the tail of stdout + stderr


class _PidsCgroup:
    """A cgroup-v1 pids group for one run, or a no-op where none can be made."""

    def __init__(self, limit: int) -> None:
        self.path: str | None = None
        if os.access(_PIDS_V1, os.W_OK):
            path = tempfile.mkdtemp(prefix="ponder-", dir=_PIDS_V1)
            try:
                with open(os.path.join(path, "pids.max"), "w") as f:
                    f.write(str(limit))
                self.path = path
            except OSError:
                os.rmdir(path)

    def enter(self) -> None:  # in the child, before exec
        if self.path:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    def destroy(self) -> None:
        if not self.path:
            return
        for _ in range(50):
            try:
                with open(os.path.join(self.path, "cgroup.procs")) as f:
                    pids = [int(x) for x in f.read().split()]
            except OSError:
                break
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        try:
            os.rmdir(self.path)
        except OSError:
            pass


def _limits(cfg: SandboxConfig, group: _PidsCgroup):
    def apply() -> None:  # runs in the child between fork and exec
        os.setsid()
        group.enter()
        mem = cfg.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cfg.cpu_s, cfg.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (cfg.max_file_mb * 2**20,) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if cfg.isolate_network:
            try:
                ctypes.CDLL(None, use_errno=True).unshare(_CLONE_NEWNET)
            except Exception:
                pass  # not permitted here: the run goes on with the host network
        resource.setrlimit(resource.RLIMIT_NPROC, (cfg.max_processes, cfg.max_processes))

    return apply


async def run_program(source: str, cfg: SandboxConfig | None = None) -> RunOutcome:
    """Run `source` as a Python program under the sandbox; passed = exit status 0."""
    cfg = cfg or SandboxConfig()
    workdir = tempfile.mkdtemp(prefix="ponder-code-")
    group = _PidsCgroup(cfg.max_processes)
    try:
        path = os.path.join(workdir, "candidate.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-B", path, cwd=workdir, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_limits(cfg, group), env={"PATH": "/usr/bin:/bin", "HOME": workdir, "PYTHONHASHSEED": "0"},
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), cfg.timeout_s)
        except asyncio.TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            return RunOutcome(False, "timeout", None, "")
        finally:
            _kill_group(proc.pid)  # whatever it forked goes too
        text = out.decode("utf-8", "replace")[-4000:]
        if proc.returncode == 0:
            return RunOutcome(True, "passed", 0, text)
        status = "killed" if proc.returncode < 0 else "failed"
        if "MemoryError" in text:
            status = "killed"
        return RunOutcome(False, status, proc.returncode, text)
    finally:
        group.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def extract_code(response: str) -> str:
    """The last fenced Python block of a response, or the response itself."""
    blocks = []
    rest = response
    while "```" in rest:
        _, _, after = rest.partition("```")
        body, sep, rest = after.partition("```")
        if not sep:
            break
        first, _, tail = body.partition("\n")
        blocks.append(tail if first.strip().lower() in ("python", "py", "") else body)
    return blocks[-1] if blocks else response


class CodeVerifier:
    """OutcomeVerifier for HumanEval / MBPP style problems: `problem.meta` holds `prompt`
    (prepended when the candidate lacks the signature), `test` and `entry_point`, or `tests`
    (a list of assert lines)."""

    def __init__(self, config: SandboxConfig | None = None, **options: object) -> None:
        self.config = config or SandboxConfig(**options)  # type: ignore[arg-type]

    def program(self, problem: Problem, code: str) -> str:
        meta = problem.meta
        entry = meta.get("entry_point")
        prefix = meta.get("prompt", "") if entry and f"def {entry}" not in code else ""
        if "test" in meta:
            return f"{prefix}{code}\n\n{meta['test']}\n\ncheck({entry})\n"
        tests = "\n".join(meta.get("tests", []))
        return f"{prefix}{code}\n\n{meta.get('test_setup', '')}\n{tests}\n"

    async def verify(self, problem: Problem, response: str) -> Verdict:
        code = extract_code(response)
        outcome = await run_program(self.program(problem, code), self.config)
        return Verdict(outcome.passed, 1.0 if outcome.passed else 0.0, Extracted(code, outcome.status).text)
