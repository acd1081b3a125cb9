"""Answer grading, voting and step scorers, found by name."""

from __future__ import annotations

from typing import Any

from .answer import equivalent, extract
from .base import OutcomeVerifier, StepScorer, Verdict

SCORERS = ("arithmetic", "logprob", "judge", "pooling")


def make_scorer(name: str, backend: Any = None, **options: Any) -> StepScorer:
    """`arithmetic` needs nothing; `logprob` and `judge` read probabilities from `backend`
    (the policy's own engine or a second one)."""
    if name == "arithmetic":
        from .arithmetic import ArithmeticScorer

        return ArithmeticScorer(**options)
    if name == "pooling":  # its own classifier engine or server, not the policy's backend
        from .pooling import PoolingPRM

        return PoolingPRM(**options)
    if name in ("logprob", "judge"):
        if backend is None:
            raise ValueError(f"scorer {name!r} needs a backend to read probabilities from")
        if name == "logprob":
            from .logprob import LogprobPRM

            return LogprobPRM(backend, **options)
        from .judge import Judge

        return Judge(backend, **options)
    raise ValueError(f"unknown scorer {name!r}: expected one of {', '.join(SCORERS)}")


__all__ = ["OutcomeVerifier", "StepScorer", "Verdict", "equivalent", "extract", "make_scorer"]
