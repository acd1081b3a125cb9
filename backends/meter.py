"""Cumulative usage of one backend: each engine request is recorded exactly once."""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Callable, Iterator

from .base import BackendStats, Usage

# Who else wants each request's usage: set per task (a context variable), so a caller can
# attribute the engine requests made on its behalf, e.g. a verifier's requests to one
# problem's ledger, while concurrent callers' requests stay apart. Backends record in the
# task that sent the request, which carries the caller's context even on an engine thread.
_listeners: ContextVar[tuple[Callable[[Usage], None], ...]] = ContextVar("ponder_usage_listeners", default=())


@contextlib.contextmanager
def usage_listener(listener: Callable[[Usage], None]) -> Iterator[None]:
    """Within this block (and the tasks it starts), every request a backend records is also
    passed to `listener`."""
    token = _listeners.set(_listeners.get() + (listener,))
    try:
        yield
    finally:
        _listeners.reset(token)


class Meter:
    """Counters behind `Backend.stats()`. Snapshots are immutable values, so a reader on
    another thread always sees a consistent total."""

    def __init__(self) -> None:
        self._stats = BackendStats()

    def record(self, usage: Usage, aborted: bool = False) -> None:
        s = self._stats
        self._stats = BackendStats(s.requests + 1, s.aborted_requests + int(aborted), s.usage + usage)
        for listener in _listeners.get():
            listener(usage)

    @property
    def stats(self) -> BackendStats:
        return self._stats
