"""Symbolic equivalence (math-verify) in worker processes, under a wall-clock limit.

math-verify can take seconds (or forever) on one pair, and its own time-outs use SIGALRM,
which works only on a process's main thread. Here each comparison runs in a worker process and the
caller waits at most `timeout_s`; a worker past its time is killed and replaced, so the limit
holds from any thread, and comparisons in flight on other workers are untouched.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time

# The worker is a plain `python -I -c` process (fork+exec, never multiprocessing's spawn, which
# re-imports the caller's __main__). One request per line on stdin: [answer, reference] as JSON;
# one reply per line: 1 or 0. Anything math-verify prints goes to stderr, never into the replies.
_WORKER = """
import json, logging, os, sys
replies = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
logging.disable(logging.WARNING)
from math_verify import parse, verify

def same(answer, reference):
    try:
        gold = parse("$" + reference + "$", parsing_timeout=None)
        pred = parse("$" + answer + "$", parsing_timeout=None)
        return bool(gold and pred and verify(gold, pred, timeout_seconds=None))
    except Exception:
        return False

replies.write("ready\\n")
replies.flush()
for line in sys.stdin:
    answer, reference = json.loads(line)
    replies.write("1\\n" if same(answer, reference) else "0\\n")
    replies.flush()
"""


class _Worker:
    START_S = 120.0  # an interpreter and a sympy import, on a machine that may be busy

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, bufsize=0, start_new_session=True,  # a terminal's Ctrl-C is for us, not it
        )
        try:
            ready = self.reply(self.START_S)
        except EOFError:
            ready = None
        if ready != "ready":
            self.kill()
            raise RuntimeError("the math-verify worker did not start")

    def ask(self, answer: str, reference: str, timeout_s: float) -> bool | None:
        """math-verify's verdict, None when there is none within `timeout_s`."""
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps([answer, reference]) + "\n").encode())
        reply = self.reply(timeout_s)
        return None if reply is None else reply == "1"

    def reply(self, timeout_s: float) -> str | None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        ready = select.poll()  # not select(): an engine's process may hold descriptors past 1024
        ready.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout_s
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not ready.poll(left * 1000):
                return None
            chunk = os.read(fd, 64)
            if not chunk:
                raise EOFError("the math-verify worker exited")
            line += chunk
        return line.decode().strip()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class SymbolicPool:
    """Up to `workers` math-verify processes, started on demand. `calls` counts comparisons sent."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self.calls = 0
        self._idle: list[_Worker] = []
        self._started = 0
        self._cond = threading.Condition()

    def equivalent(self, answer: str, reference: str, timeout_s: float) -> bool:
        """math-verify's verdict, or False when it takes longer than `timeout_s`."""
        for _ in range(2):  # a worker found dead is replaced once; one past its time is not retried
            worker = self._take()
            try:
                result = worker.ask(answer, reference, timeout_s)
            except (OSError, EOFError):
                worker.kill()
                self._give_back(None)
                continue
            if result is not None:
                self._give_back(worker)
                return result
            worker.kill()  # past its time: never reused
            self._give_back(None)
            return False
        return False

    def _take(self) -> _Worker:
        with self._cond:
            while not self._idle and self._started >= self.workers:
                self._cond.wait()
            self.calls += 1
            if self._idle:
                return self._idle.pop()
            self._started += 1
        try:
            return _Worker()
        except BaseException:
            self._give_back(None)
            raise

    def _give_back(self, worker: _Worker | None) -> None:
        with self._cond:
            if worker is None:
                self._started -= 1
            else:
                self._idle.append(worker)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._started -= len(idle)
        for w in idle:
            w.kill()


_pool: SymbolicPool | None = None
_pool_lock = threading.Lock()


def shared_pool() -> SymbolicPool:
    """One pool per process, made on first use: workers are processes, worth sharing."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = SymbolicPool(workers=max(1, min(4, (os.cpu_count() or 2))))
        return _pool
