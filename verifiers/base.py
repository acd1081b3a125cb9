"""Verifier contracts. Strategies depend on these, never on a concrete scorer.

The caller that wants a verifier call's engine usage (the runtime's context, for the problem's
ledger) opens `metering()` around the call and reads the meter afterwards. Requests sent
through a Backend reach it from the backend's own usage meter; a verifier with an engine of
its own reports each call with `report_usage`. The meter lives in a context variable, so
concurrent verifier calls for different problems never mix.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator, Protocol, Sequence, runtime_checkable

from ..backends.base import Backend, Usage
from ..backends.meter import usage_listener
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
class YesNoJudge(Protocol):
    """A scorer that also answers yes/no questions about a text (TrimR's thought checks)."""

    async def p_yes(self, context: str, question: str) -> float: ...


@runtime_checkable
class ModelScorer(Protocol):
    """A scorer that reads from an engine of its own, which can also write (a critique). Such a
    class says `needs_backend = True` and is built as `Class(backend, **options)`."""

    backend: Backend


@runtime_checkable
class EngineOwner(Protocol):
    """A scorer that started an engine of its own (a pooling PRM, a value model): whoever built
    it closes it when the run ends, or the engine outlives the run."""

    def close(self) -> None: ...


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
        with usage_listener(meter.add):  # requests made through a backend's own meter
            yield meter
    finally:
        _meter.reset(token)


def report_usage(usage: Usage, requests: int = 1) -> None:
    """Called by a verifier after each engine call it makes outside a Backend (an engine of its
    own, e.g. the pooling runner); a no-op outside `metering()`."""
    meter = _meter.get()
    if meter is not None:
        meter.add(usage, requests)
