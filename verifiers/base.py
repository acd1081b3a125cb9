"""Verifier contracts. Strategies depend on these, never on a concrete scorer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

from ..records.problem import Problem


@dataclass(frozen=True)
class Verdict:
    correct: bool
    score: float  # in [0, 1]
    extracted: str


@runtime_checkable
class StepScorer(Protocol):
    """PRM-like: one score in [0, 1] per step; the last step may be unfinished (early
    rejection scores partial steps). The caller's ledger counts each call."""

    async def score(self, problem: Problem, steps: Sequence[str]) -> list[float]: ...


@runtime_checkable
class OutcomeVerifier(Protocol):
    async def verify(self, problem: Problem, response: str) -> Verdict: ...
