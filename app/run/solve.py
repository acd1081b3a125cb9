"""`ponder.solve` and `ponder.solve_async`: one question, on a fresh engine or a given backend.

`solve` waits for the answer from synchronous code, and from inside a running event loop too
(a notebook, an async web handler): there it solves on a worker thread with a loop of its own,
since a loop cannot wait on itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from ...records.problem import Problem
from ...records.result import Result
from ...runtime.solver import Solver
from ...strategies.base import make_strategy


async def solve_async(
    question: str,
    strategy: str = "best_of_n",
    model: str = "smollm2-135m-instruct",
    scorer: str | None = None,
    answer: str | None = None,
    endpoints: list[str] | None = None,
    backend: Any = None,
    **config: object,
) -> Result:
    """Solve one question on `backend` (left open), or else on a fresh in-process engine or on
    OpenAI-compatible `endpoints` serving `model` (closed afterwards). The strategy config is
    checked before any engine starts; search strategies default to the arithmetic step scorer."""
    from ...backends import make_backend
    from ...verifiers import make_scorer
    from ...verifiers.base import EngineOwner

    chosen = make_strategy(strategy, **config)
    scorer = scorer or ("arithmetic" if chosen.needs_scorer else None)
    owned = backend is None
    if owned:
        backend = make_backend("openai", endpoints=endpoints, model=model) if endpoints else make_backend("vllm", model=model)
    built = None
    try:
        built = make_scorer(scorer, backend) if scorer else None
        return await Solver(backend, chosen, built).solve(Problem(id="q0", question=question, answer=answer))
    finally:
        if isinstance(built, EngineOwner):
            built.close()
        if owned:
            await backend.close()


def solve(*args: Any, **kwargs: Any) -> Result:
    """`solve_async` (the same arguments), waited for: on this thread, or on a worker thread
    when this thread already runs an event loop."""
    work = solve_async(*args, **kwargs)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ponder-solve") as pool:
        return pool.submit(asyncio.run, work).result()
