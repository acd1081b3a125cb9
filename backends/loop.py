"""A private event loop on a daemon thread.

vLLM's AsyncLLM binds its output handler to the loop it first runs on. Giving each engine
its own loop thread lets callers use any loop (a fresh `asyncio.run` per script call, pytest's
per-test loops) and lets several engines live in one process without sharing state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from typing import Any, Callable, Coroutine, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the private loop; cancelling the returned future cancels it there
        (`cancel` also waits until it has ended)."""
        job: concurrent.futures.Future[T] = concurrent.futures.Future()

        def start() -> None:  # in a copy of the caller's context: its context variables go along
            if job.cancelled():
                coro.close()
                return
            task = self.loop.create_task(coro)
            job._ponder_task = task  # type: ignore[attr-defined]
            task.add_done_callback(lambda t: _settle(job, t))
            job.add_done_callback(lambda f: f.cancelled() and self.loop.call_soon_threadsafe(task.cancel))

        self.loop.call_soon_threadsafe(start)
        return job

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the private loop from the caller's loop. Cancellation propagates, and
        the caller goes on only once `coro` has ended there (within `settle_s`), so whatever
        it records on its way out (an aborted request's usage) is recorded by then."""
        job = self.submit(coro)
        try:
            return await asyncio.shield(asyncio.wrap_future(job))
        except asyncio.CancelledError:
            await self.cancel(job)
            raise

    async def cancel(self, job: concurrent.futures.Future, settle_s: float = 10.0) -> None:
        """Cancel a submitted job and wait (up to `settle_s`) until it has ended on the private loop."""
        caller = asyncio.get_running_loop()
        ended = caller.create_future()

        def signal() -> None:  # on the private loop
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
                caller.call_soon_threadsafe(lambda: ended.done() or ended.set_result(None))

        self.loop.call_soon_threadsafe(_cancel_then, job, signal)
        await asyncio.wait({ended}, timeout=settle_s)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Blocking form for synchronous code (never from inside the private loop)."""
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)


def _settle(job: concurrent.futures.Future, task: asyncio.Task) -> None:
    if job.done():  # cancelled by its caller
        return
    if task.cancelled():
        job.cancel()
    elif task.exception() is not None:
        job.set_exception(task.exception())  # type: ignore[arg-type]
    else:
        job.set_result(task.result())


def _cancel_then(job: concurrent.futures.Future, signal: Callable[[], None]) -> None:
    """On the private loop, after the job's start (callbacks run in order): cancel its task and
    call `signal` once the task has ended."""
    task = getattr(job, "_ponder_task", None)
    job.cancel()
    if task is None or task.done():
        signal()
        return
    task.add_done_callback(lambda _: signal())
    task.cancel()
