"""ponder: test-time reasoning orchestration on a batched engine with a shared prefix cache.

The public API is imported on first use (`ponder.Context` imports the runtime then), so
`import ponder` and `ponder --help` stay instant and never import torch or vLLM.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module (under ponder) that defines it
_LAZY = {
    "Budget": "runtime.budget",
    "Candidate": "records.result",
    "Context": "runtime.context",
    "Problem": "records.problem",
    "Result": "records.result",
    "Solver": "runtime.solver",
    "Strategy": "strategies.base",
    "StrategyConfig": "strategies.base",
    "StrategySpec": "strategies.base",
    "make_strategy": "strategies.base",  # strategies.base registers the built-ins first
    "register_strategy": "strategies.base",
    "make_scorer": "verifiers",
    "register_scorer": "verifiers",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def solve(question: str, strategy: str = "best_of_n", **kwargs: object):
    """Solve one question synchronously on a fresh in-process engine; see runtime.solver.solve."""
    from .app.solve import solve as _solve

    return _solve(question, strategy, **kwargs)  # type: ignore[arg-type]


__all__ = ["solve", "__version__", *_LAZY]
