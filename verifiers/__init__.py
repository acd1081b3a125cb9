"""Answer grading, voting and step scorers, found by name."""

from __future__ import annotations

from typing import Any

from .answer import equivalent, extract
from .base import OutcomeVerifier, StepScorer, Verdict

SCORERS = ("arithmetic",)


def make_scorer(name: str, backend: Any = None, **options: Any) -> StepScorer:
    if name == "arithmetic":
        from .arithmetic import ArithmeticScorer

        return ArithmeticScorer(**options)
    raise ValueError(f"unknown scorer {name!r}: expected one of {', '.join(SCORERS)}")


__all__ = ["OutcomeVerifier", "StepScorer", "Verdict", "equivalent", "extract", "make_scorer"]
