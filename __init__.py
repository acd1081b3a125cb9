"""ponder: test-time reasoning orchestration on a batched engine with a shared prefix cache."""

from __future__ import annotations

__version__ = "0.1.0"


def solve(question: str, strategy: str = "best_of_n", **kwargs: object):
    """Solve one question synchronously on a fresh in-process engine; see runtime.solver.solve."""
    from .app.solve import solve as _solve

    return _solve(question, strategy, **kwargs)  # type: ignore[arg-type]


__all__ = ["solve", "__version__"]
