"""Memory grows linearly: a trajectory's trace costs the same per token at any depth, and a
batch run with a result sink holds no finished problem."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

from ponder.backends.scripted import ScriptCall, ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.context import Context
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy


def counting(call: ScriptCall) -> str:
    """One short step per request, numbered by how many the trajectory already holds."""
    return f"step {call.generated.count(chr(10) * 2)} adds 1.\n\n"


class Forgetful(ScriptedBackend):
    """The scripted engine without its own records (every call, every cached prefix), which
    grow with what it served and would hide the memory of what is measured here."""

    def _remember(self, ids: tuple[int, ...]) -> None:
        pass

    async def generate(self, prompt_ids, sampling):
        out = await super().generate(prompt_ids, sampling)
        self.calls.clear()
        return out


async def trajectory_bytes_per_token(steps: int) -> float:
    """Bytes a trace keeps per generated token after `steps` continuations, each sent from
    the previous step's exact ids: what deleting the trace gives back."""
    backend = Forgetful(counting)
    gc.collect()
    tracemalloc.start()
    try:
        ctx = Context(Problem(id="deep", question="Count."), backend)
        node = ctx.tree.root
        for _ in range(steps):
            (node,) = await ctx.extend(node, ctx.sampling(temperature=0.0, max_tokens=32, stop=("\n\n",)))
        generated = len(node.generated_ids)
        assert node.depth == steps and node.ids[-generated:] == node.generated_ids
        before = tracemalloc.get_traced_memory()[0]
        del ctx, node
        gc.collect()
        kept = before - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return kept / generated


async def test_a_trajectory_costs_the_same_memory_per_token_at_500_steps_as_at_100():
    short, deep = await trajectory_bytes_per_token(100), await trajectory_bytes_per_token(500)
    # every node holding its whole prefix made the deep one cost about 4x per token
    assert deep < 1.25 * short, (short, deep)


async def exact(problem: Problem, result) -> bool:
    return result.answer == problem.answer


def batch_solver() -> Solver:
    return Solver(Forgetful(["So \\boxed{7}."]), make_strategy("best_of_n", n=2, max_tokens=16), grader=exact)


async def batch_peak_bytes(problems: list[Problem], keep_results: bool) -> tuple[int, int]:
    """Peak memory of solving `problems` with a sink (what the sink kept aside), and how many
    it saw answered right."""
    solver = batch_solver()
    right = 0

    def sink(problem: Problem, result) -> None:
        nonlocal right
        right += bool(result.correct)

    tracemalloc.start()
    try:
        kept = await solver.solve_many(problems, concurrency=8, on_result=sink, keep_results=keep_results)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(kept) == (len(problems) if keep_results else 0)
    return peak, right


async def test_a_batch_run_with_a_sink_holds_no_finished_problem():
    problems = [Problem(id=f"p{i}", question=f"What is {i} + 7 - {i}?", answer="7") for i in range(2000)]
    # Python keeps freed tuples for reuse (up to 2000 of each size) and tracemalloc counts them
    # as held until a full collection empties those free lists: a first pass fills them with
    # blocks allocated before tracing starts, so what is measured below is what a run holds.
    # That pass needs no tracing of its own (tracing makes a run several times slower).
    await batch_solver().solve_many(problems, concurrency=8, on_result=lambda problem, result: None, keep_results=False)
    small, right_small = await batch_peak_bytes(problems[:500], keep_results=False)
    large, right_large = await batch_peak_bytes(problems, keep_results=False)
    assert (right_small, right_large) == (500, 2000)
    assert large < 1.25 * small, (small, large)
    # the measure sees finished problems where they are kept: it is not blind to them
    kept_small, _ = await batch_peak_bytes(problems[:500], keep_results=True)
    kept_large, _ = await batch_peak_bytes(problems, keep_results=True)
    assert kept_large > 2.5 * kept_small, (kept_small, kept_large)


async def test_a_finished_problem_is_freed_without_the_cycle_collector():
    """Reference counting alone frees a finished problem's tree: a reference cycle would leave
    it to the collector's full passes, which come rarer the larger the heap (an engine's)."""
    solver = Solver(Forgetful(["So \\boxed{7}."]), make_strategy("best_of_n", n=3, max_tokens=16), grader=exact)
    held = []

    def sink(problem: Problem, result) -> None:
        result.trace.to_json()  # as the run store saves it
        held.extend(weakref.ref(x) for x in (result, result.trace, result.trace.graph))

    gc.collect()
    gc.disable()
    try:
        await solver.solve_many([Problem(id="p", question="What is 3 + 4?", answer="7")], on_result=sink, keep_results=False)
        assert len(held) == 3 and [ref() for ref in held] == [None] * 3
    finally:
        gc.enable()
