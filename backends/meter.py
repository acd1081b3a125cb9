"""Cumulative usage of one backend: each engine request is recorded exactly once."""

from __future__ import annotations

from .base import BackendStats, Usage


class Meter:
    """Counters behind `Backend.stats()`. Snapshots are immutable values, so a reader on
    another thread always sees a consistent total."""

    def __init__(self) -> None:
        self._stats = BackendStats()

    def record(self, usage: Usage, aborted: bool = False) -> None:
        s = self._stats
        self._stats = BackendStats(s.requests + 1, s.aborted_requests + int(aborted), s.usage + usage)

    @property
    def stats(self) -> BackendStats:
        return self._stats
