"""Verifier contracts. Strategies depend on these, never on a concrete scorer.

Verifiers that call an engine report each call's usage with `report_usage`; the caller that
wants it (the runtime's context, for the problem's ledger) opens `metering()` around the
verifier call and reads the meter afterwards. The meter lives in a context variable, so
concurrent verifier calls for different problems never mix.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator, Protocol, Sequence, runtime_checkable

from ..backends.base import BackendStats, Usage
from ..backends.meter import Meter as BackendMeter
from ..records.problem import Problem


@dataclass(frozen=True)
class Verdict:
    correct: bool
    score: float  # in [0, 1]
    extracted: str


@runtime_checkable
class StepScorer(Protocol):
    """PRM-like: one score in [0, 1] per step; the last step may be unfinished (early
    rejection scores partial steps). The caller's ledger counts each call, and the engine
    requests it reports with `report_usage`."""

    async def score(self, problem: Problem, steps: Sequence[str]) -> list[float]: ...


@runtime_checkable
class OutcomeVerifier(Protocol):
    async def verify(self, problem: Problem, response: str) -> Verdict: ...


@dataclass
class Meter:
    """Engine requests made by verifier calls inside one `metering()` block."""

    requests: int = 0
    usage: Usage = field(default_factory=Usage)

    def add(self, usage: Usage, requests: int = 1) -> None:
        self.requests += requests
        self.usage = self.usage + usage


_meter: ContextVar[Meter | None] = ContextVar("ponder_verifier_meter", default=None)


@contextlib.contextmanager
def metering() -> Iterator[Meter]:
    meter = Meter()
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


def report_usage(usage: Usage, requests: int = 1) -> None:
    """Called by a verifier after each engine call it makes; a no-op outside `metering()`."""
    meter = _meter.get()
    if meter is not None:
        meter.add(usage, requests)



def observe(backend: object) -> None:
    """Make every engine request `backend` records reach the current `metering()` block too,
    with the usage the engine reported. Backends record each request once through their
    usage meter (backends/meter.py), in the task that sent it, which carries the caller's
    context variables even on the engine's own loop thread."""
    inner = getattr(backend, "_meter", None)
    if isinstance(inner, BackendMeter) and not isinstance(inner, _ReportingMeter):
        backend._meter = _ReportingMeter(inner.stats)  # type: ignore[attr-defined]


class _ReportingMeter(BackendMeter):
    def __init__(self, start: BackendStats) -> None:
        super().__init__()
        self._stats = start

    def record(self, usage: Usage, aborted: bool = False) -> None:
        super().record(usage, aborted)
        report_usage(usage)
