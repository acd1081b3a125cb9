"""ponder: test-time reasoning orchestration on a batched engine with a shared prefix cache.

The public API is imported on first use (`ponder.Context` imports the runtime then), so
`import ponder` and `ponder --help` stay instant and never import torch or vLLM.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module (under ponder) that defines it
_LAZY = {
    "Budget": "runtime.budget",
    "Candidate": "records.result",
    "Context": "runtime.context",
    "Problem": "records.problem",
    "PromptConfig": "runtime.prompt",
    "Result": "records.result",
    "Sampling": "backends.base",
    "Solver": "runtime.solver",
    "Strategy": "strategies.base",
    "StrategyConfig": "strategies.base",
    "StrategyContext": "runtime.contract",
    "StrategySpec": "strategies.base",
    "make_backend": "backends",
    "make_strategy": "strategies.base",  # strategies.base registers the built-ins first
    "register_strategy": "strategies.base",
    "make_scorer": "verifiers",
    "register_scorer": "verifiers",
}

if TYPE_CHECKING:  # the same names, seen by type checkers and IDEs as what they are
    from .backends import make_backend
    from .backends.base import Sampling
    from .records.problem import Problem
    from .records.result import Candidate, Result
    from .runtime.budget import Budget
    from .runtime.context import Context
    from .runtime.contract import StrategyContext
    from .runtime.prompt import PromptConfig
    from .runtime.solver import Solver
    from .strategies.base import Strategy, StrategyConfig, StrategySpec, make_strategy, register_strategy
    from .verifiers import make_scorer, register_scorer


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def solve(question: str, strategy: str = "best_of_n", **kwargs: object) -> Result:
    """Solve one question and wait for it, also from inside a running event loop (a notebook);
    see app/run/solve.py for the options."""
    from .app.run.solve import solve as _solve

    return _solve(question, strategy, **kwargs)  # type: ignore[arg-type]


async def solve_async(question: str, strategy: str = "best_of_n", **kwargs: object) -> Result:
    """`solve` for async code: awaited on the caller's loop."""
    from .app.run.solve import solve_async as _solve_async

    return await _solve_async(question, strategy, **kwargs)  # type: ignore[arg-type]


__all__ = ["solve", "solve_async", "__version__", *_LAZY]
