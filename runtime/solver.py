"""The Python API: a Solver holds a backend, a strategy and verifiers, and solves problems.

`solve_many` runs problems concurrently (bounded) with no barrier between them: each
problem's strategy advances as soon as its own requests return, so the engine batch stays
full. Results come back in completion order through `on_result` (for flushing) and in
input order as the return value, unless the caller keeps none (a long batch run). A
problem that fails becomes a Result with `error` set (one line; the traceback goes to the log
and the trace) and the others go on; only a dead engine stops the run.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from dataclasses import replace
from typing import AsyncIterator, Awaitable, Callable, Iterable

from ..backends.base import Backend
from ..records.event import Event
from ..records.ledger_summary import LedgerSummary
from ..records.problem import Problem
from ..records.result import Result
from ..records.trace import Trace
from ..verifiers.answer import equivalent_async
from ..verifiers.base import StepScorer
from .budget import Budget
from .context import Context
from .emitter import Emitter, OnEvent
from .ledger import Ledger
from .prompt import PromptConfig
from .strategy import Strategy

OnResult = Callable[[Problem, Result], Awaitable[None] | None]
log = logging.getLogger("ponder.solver")


def engine_dead(error: BaseException, backend: Backend) -> bool:
    """An error that no other problem can survive: vLLM's EngineDeadError anywhere in the
    cause chain, or a backend whose engine reports itself errored."""
    seen: BaseException | None = error
    while seen is not None:
        if any(cls.__name__ == "EngineDeadError" for cls in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    if getattr(backend, "dead", False):
        return True
    # the Backend contract has no liveness query; VllmBackend exposes its AsyncLLM as `engine`
    engine = getattr(backend, "engine", None)
    return bool(getattr(engine, "errored", False)) if engine is not None else False


def error_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def not_started(problem: Problem, strategy: str, global_budget: Budget) -> Result:
    """The record of a problem never started because the run's global budget was spent: an
    error, so that a resumed run tries it again (a Ray run's driver records it alike)."""
    limits = {k: v for k, v in global_budget.model_dump().items() if v is not None}
    return Result(
        problem_id=problem.id, strategy=strategy, answer="", text="", candidates=(),
        ledger=LedgerSummary(), trace=Trace(()),
        error=f"not started: the run's global budget is spent ({', '.join(f'{k} {v}' for k, v in limits.items())})",
    )


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
        if self.prompt.thinking is not None:  # delimiters the tokenizer cannot write: refused before any request
            self.prompt.thinking.check(backend.tokenizer)
        self.budget = budget or Budget()
        self.global_budget = global_budget or Budget()
        self.seed = seed
        self.delimiter = delimiter
        self.grader = grader
        self.ledger = Ledger()  # the run's global ledger; every problem's ledger feeds it

    def context(self, problem: Problem, emitter: Emitter | None = None) -> Context:
        return Context(
            problem, self.backend, self.scorer, self.budget, Ledger(parent=self.ledger),
            self.global_budget, self.seed, self.delimiter, self.prompt, emitter=emitter,
        )

    async def solve(self, problem: Problem | str, on_event: OnEvent | None = None) -> Result:
        """One problem. `on_event` (sync or async) receives the runtime's events in order, the
        last one of kind "done" carrying the Result."""
        if isinstance(problem, str):
            problem = Problem(id="q0", question=problem)
        emitter = Emitter(problem.id, on_event)
        try:
            result = await self._run(self.context(problem, emitter))
            await emitter.done(result)
        finally:
            await emitter.close()
        return result

    async def events(self, problem: Problem | str) -> AsyncIterator[Event]:
        """The events of solving `problem`, ending with kind "done" (its `result` set). Leaving
        the iteration early cancels the solve and aborts its engine requests."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        task = asyncio.create_task(self.solve(problem, on_event=queue.put_nowait))
        try:
            while True:
                get = asyncio.ensure_future(queue.get())
                await asyncio.wait({get, task}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    get.cancel()
                    while not queue.empty():  # the solve ended: hand over what it left
                        event = queue.get_nowait()
                        yield event
                        if event.kind == "done":
                            return
                    task.result()  # the solve failed: raise its error
                    return
                event = get.result()
                yield event
                if event.kind == "done":
                    return
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self, ctx: Context) -> Result:
        result = await self.strategy.run(ctx)
        return replace(result, correct=await self._grade(ctx.problem, result))

    async def _grade(self, problem: Problem, result: Result) -> bool | None:
        if self.grader is not None:
            return await self.grader(problem, result)
        if problem.kind == "code" and problem.meta:
            from ..verifiers.code import CodeVerifier

            return (await CodeVerifier().verify(problem, result.text)).correct
        if problem.answer is None:
            return None
        return await equivalent_async(result.answer, problem.answer)

    def _failed(self, problem: Problem, ctx: Context | None, error: Exception) -> Result:
        """The record of a problem that raised: no answer, what it spent, the error in one line.
        The full traceback goes to the log (a run's log file) and into the trace."""
        full = "".join(traceback.format_exception(error))
        log.error("problem %s failed\n%s", problem.id, full.rstrip())
        trace = ctx.tree if ctx is not None else Trace(())
        trace.graph.graph["error"] = full
        return Result(
            problem_id=problem.id, strategy=self.strategy.name, answer="", text="", candidates=(),
            ledger=ctx.ledger.summary() if ctx is not None else LedgerSummary(),
            trace=trace, error=error_line(error),
        )

    def _not_started(self, problem: Problem) -> Result:
        return not_started(problem, self.strategy.name, self.global_budget)

    async def solve_many(
        self, problems: Iterable[Problem], concurrency: int = 8, on_result: OnResult | None = None,
        keep_results: bool = True,
    ) -> list[Result]:
        """Every problem's Result in input order (one not started because the global budget
        was spent is a Result with that `error`). With `keep_results=False` a finished problem
        is handed to `on_result` and then dropped, and the return value is empty: memory holds
        the problems in flight only, however long the run (as `ponder run` uses it)."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if not keep_results and on_result is None:
            raise ValueError("solve_many(keep_results=False) needs an on_result sink, or every Result is lost")
        # `concurrency` workers take problems from one iterator: nothing per problem is created
        # before a worker takes it, and nothing stays once its sink has it
        queue = iter(enumerate(problems))
        results: dict[int, Result] = {}

        async def worker() -> None:
            for i, p in queue:
                ctx: Context | None = None
                # spent, not merely held: what other problems hold in flight may come back
                if self.global_budget.exhausted(self.ledger, reserved=False):
                    r = self._not_started(p)
                else:
                    try:
                        ctx = self.context(p)
                        r = await self._run(ctx)
                    except Exception as e:
                        if engine_dead(e, self.backend):
                            raise
                        r = self._failed(p, ctx, e)
                if ctx is not None:
                    # the Result holds the tree now; the tree reports its events through a method
                    # of the context, so the context letting go of the tree leaves no reference
                    # cycle, and a finished problem is freed the moment its sink drops it
                    # rather than at the cyclic collector's next full pass
                    del ctx.tree
                if keep_results:
                    results[i] = r
                if on_result is not None:
                    done = on_result(p, r)
                    if asyncio.iscoroutine(done):
                        await done
                del r

        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()  # cancelling a problem aborts its engine requests
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [results[i] for i in sorted(results)]
