"""The Python API: a Solver holds a backend, a strategy and verifiers, and solves problems.

`solve_many` runs problems concurrently (bounded) with no barrier between them: each
problem's strategy advances as soon as its own requests return, so the engine batch stays
full. Results come back in completion order through `on_result` (for flushing) and in
input order as the return value.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Awaitable, Callable, Iterable

from ..backends.base import Backend
from ..verifiers.answer import equivalent
from ..verifiers.base import StepScorer
from .budget import Budget
from .context import Context
from .ledger import Ledger
from ..records.problem import Problem
from .prompt import PromptConfig
from .strategy import Strategy
from ..records.result import Result

OnResult = Callable[[Problem, Result], Awaitable[None] | None]


class Solver:
    def __init__(
        self,
        backend: Backend,
        strategy: Strategy,
        scorer: StepScorer | None = None,
        prompt: PromptConfig | None = None,
        budget: Budget | None = None,
        global_budget: Budget | None = None,
        seed: int = 0,
        delimiter: str = "\n\n",
        grader: Callable[[Problem, Result], Awaitable[bool | None]] | None = None,
    ) -> None:
        self.backend = backend
        self.strategy = strategy
        if getattr(self.strategy, "needs_scorer", False) and scorer is None:
            raise ValueError(f"strategy {self.strategy.name} needs a step scorer (scorer: arithmetic | logprob | ...)")
        self.scorer = scorer
        self.prompt = prompt or PromptConfig()
        self.budget = budget or Budget()
        self.global_budget = global_budget or Budget()
        self.seed = seed
        self.delimiter = delimiter
        self.grader = grader
        self.ledger = Ledger()  # the run's global ledger; every problem's ledger feeds it

    async def solve(self, problem: Problem | str) -> Result:
        if isinstance(problem, str):
            problem = Problem(id="q0", question=problem)
        ctx = Context(
            problem, self.backend, self.scorer, self.budget, Ledger(parent=self.ledger),
            self.global_budget, self.seed, self.delimiter, self.prompt,
        )
        result = await self.strategy.run(ctx)
        return replace(result, correct=await self._grade(problem, result))

    async def _grade(self, problem: Problem, result: Result) -> bool | None:
        if self.grader is not None:
            return await self.grader(problem, result)
        if problem.kind == "code" and problem.meta:
            from ..verifiers.code import CodeVerifier

            return (await CodeVerifier().verify(problem, result.text)).correct
        if problem.answer is None:
            return None
        return equivalent(result.answer, problem.answer)

    async def solve_many(
        self, problems: Iterable[Problem], concurrency: int = 8, on_result: OnResult | None = None
    ) -> list[Result]:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        items = list(problems)
        gate = asyncio.Semaphore(concurrency)
        results: list[Result | None] = [None] * len(items)

        async def one(i: int, p: Problem) -> None:
            async with gate:
                if self.global_budget.exhausted(self.ledger):
                    return
                results[i] = r = await self.solve(p)
            if on_result is not None:
                done = on_result(p, r)
                if asyncio.iscoroutine(done):
                    await done

        await asyncio.gather(*(one(i, p) for i, p in enumerate(items)))
        return [r for r in results if r is not None]

