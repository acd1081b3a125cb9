"""`ponder.solve`: one question, synchronously, on a fresh in-process engine."""

from __future__ import annotations

import asyncio

from ..records.problem import Problem
from ..records.result import Result
from ..runtime.solver import Solver
from ..strategies.base import make_strategy


def solve(
    question: str,
    strategy: str = "best_of_n",
    model: str = "smollm2-135m-instruct",
    scorer: str | None = None,
    answer: str | None = None,
    endpoints: list[str] | None = None,
    **config: object,
) -> Result:
    """Solve one question synchronously on a fresh in-process engine (closed afterwards), or on
    OpenAI-compatible `endpoints` serving `model`. The strategy config is checked before the
    engine starts; search strategies default to the arithmetic step scorer."""
    from ..backends import make_backend
    from ..verifiers import make_scorer

    chosen = make_strategy(strategy, **config)
    scorer = scorer or ("arithmetic" if chosen.needs_scorer else None)
    backend = make_backend("openai", endpoints=endpoints, model=model) if endpoints else make_backend("vllm", model=model)

    async def run() -> Result:
        try:
            solver = Solver(backend, chosen, make_scorer(scorer, backend) if scorer else None)
            return await solver.solve(Problem(id="q0", question=question, answer=answer))
        finally:
            await backend.close()

    return asyncio.run(run())
