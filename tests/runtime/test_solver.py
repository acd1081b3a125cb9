"""The solver: one failing problem never stops the others, only a dead engine stops a run, and
problems solved together interleave on the engine."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.base import Sampling
from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy

from ..engine_runs import solver
from ..scripts import KeywordScorer, backend

PROBLEMS = [Problem(id=f"p{i}", question=f"What is {i} + 4?", answer=str(i + 4)) for i in range(3)]


class FailingScorer(KeywordScorer):
    """Raises for one problem, after its first request has been sent."""

    async def score(self, problem, steps):
        if problem.id == "p1":
            raise RuntimeError("scorer crashed\nsecond line")
        return await super().score(problem, steps)


async def test_a_scorer_error_becomes_an_error_record_and_the_others_finish():
    seen = []
    solver = Solver(backend(), make_strategy("beam_search", n=4, width=2, max_steps=5), FailingScorer())
    results = await solver.solve_many(PROBLEMS, concurrency=3, on_result=lambda p, r: seen.append(r))
    assert [r.problem_id for r in results] == ["p0", "p1", "p2"]
    bad = results[1]
    assert bad.error == "RuntimeError: scorer crashed" and bad.answer == "" and bad.text == ""
    # what it spent before failing: the first step's n=4 samples (four engine requests)
    assert bad.ledger.requests == 4 and bad.ledger.generated_tokens > 0
    assert all(r.error is None and r.answer == "7" for r in (results[0], results[2]))
    assert sorted(r.problem_id for r in seen) == ["p0", "p1", "p2"]
    assert sum(r.ledger.requests for r in results) == solver.ledger.requests


async def test_a_prompt_longer_than_the_context_is_refused_before_it_is_sent():
    b = backend()
    b.max_model_len = 120  # what the scripted engine accepts, as VllmBackend's config says for vLLM
    long = Problem(id="long", question="x" * 200)
    results = await Solver(b, make_strategy("best_of_n", n=2, max_tokens=16)).solve_many([PROBLEMS[0], long, PROBLEMS[2]])
    assert [r.error for r in results][0::2] == [None, None]
    assert results[1].error.startswith("ValueError: problem long: prompt of ")
    assert "model's context of 120 tokens" in results[1].error
    assert results[1].ledger.requests == 0
    assert all(call.prompt.count("x" * 200) == 0 for call in b.calls)  # never reached the engine
    assert b.stats().requests == 4  # two samples for each of the two good problems


class EngineDeadError(RuntimeError):
    """Named like vLLM's: the engine process is gone."""


class DyingBackend(ScriptedBackend):
    async def generate(self, prompt_ids, sampling: Sampling):
        if "What is 1 + 4?" in self.tokenizer.decode(prompt_ids):
            await asyncio.sleep(0.05)
            raise EngineDeadError("engine core died")
        return await super().generate(prompt_ids, sampling)


async def test_a_dead_engine_stops_the_run_and_cancels_problems_in_flight():
    b = DyingBackend(["slow answer \\boxed{1}"], token_delay_s=0.05)  # 20 tokens: 1 s per request
    finished = []
    with pytest.raises(EngineDeadError):
        await Solver(b, make_strategy("best_of_n", n=1)).solve_many(PROBLEMS, concurrency=3, on_result=lambda p, r: finished.append(p.id))
    await asyncio.sleep(1.5)  # long enough for the others to have finished, had they gone on
    assert finished == []  # they were cancelled, not recorded as errors
    assert b.stats().requests == b.stats().aborted_requests == 2  # the other two were aborted, none finished


@pytest.mark.engine
async def test_an_over_long_question_on_the_real_engine_is_one_error_record(engine):
    problems = [
        Problem(id="a", question="What is 2 + 3?", answer="5"),
        Problem(id="long", question="word " * 9000),
        Problem(id="b", question="What is 4 + 4?", answer="8"),
    ]
    before = engine.stats().requests
    results = await Solver(engine, make_strategy("best_of_n", n=1, temperature=0.0, max_tokens=16)).solve_many(problems)
    assert [r.problem_id for r in results] == ["a", "long", "b"]
    assert results[0].error is None and results[0].text and results[2].error is None and results[2].text
    assert results[1].error.startswith("ValueError: problem long: prompt of 90")
    assert "context of 2048 tokens" in results[1].error
    assert engine.stats().requests - before == 2  # the long prompt never reached the engine


@pytest.mark.engine
async def test_solve_many_interleaves_problems(engine):
    problems = [Problem(id=f"p{i}", question=f"What is {i} + {i + 3}?", answer=str(2 * i + 3)) for i in range(8)]
    s = solver(engine, "beam_search", n=2, width=1, step_tokens=24, final_tokens=32, max_steps=2)
    flushed = []
    results = await s.solve_many(problems, concurrency=8, on_result=lambda p, r: flushed.append(p.id))
    assert sorted(flushed) == sorted(p.id for p in problems) and len(results) == 8
    spans = [(r.trace.t0, r.trace.t0 + max(a["t_end"] for _, a in r.trace.graph.nodes(data=True))) for r in results]
    overlapping = sum(1 for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1])
    assert overlapping >= 8  # problems ran at the same time, not one after another
    assert s.ledger.requests == sum(r.ledger.requests for r in results)
