"""Budgets are hard limits for every strategy, at any concurrency, and a budget never costs the answer."""

from __future__ import annotations

import time

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.budget import Allowance, Budget
from ponder.runtime.ledger import Ledger
from ponder.runtime.solver import Solver
from ponder.strategies.base import STRATEGIES as REGISTERED
from ponder.strategies.base import make_strategy

from ..scripts import KeywordScorer, backend

PROBLEMS = [Problem(id=f"p{i}", question=f"What is {i} + 7?", answer=str(i + 7)) for i in range(8)]
STRATEGIES = sorted(REGISTERED)


def has_text(result) -> bool:
    return any(a["step"].strip() for n, a in result.trace.graph.nodes(data=True) if n != 0)


def check_answer(result) -> None:
    assert result.error is None
    if has_text(result):
        assert result.text.strip(), f"{result.strategy}: empty answer although the tree has text"


@pytest.mark.parametrize("tokens", [50, 150, 400])
@pytest.mark.parametrize("name", STRATEGIES)
async def test_one_problem_never_generates_past_its_token_budget(name, tokens):
    b = backend()
    r = await Solver(b, make_strategy(name), KeywordScorer(), budget=Budget(generated_tokens=tokens)).solve(PROBLEMS[0])
    assert r.ledger.generated_tokens <= tokens
    assert b.stats().usage.generated_tokens <= tokens  # what the engine itself counted
    check_answer(r)


@pytest.mark.parametrize("problems", [1, 8])
@pytest.mark.parametrize("tokens", [50, 400])
@pytest.mark.parametrize("name", STRATEGIES)
async def test_problems_sharing_a_global_budget_never_pass_it_together(name, tokens, problems):
    b = backend(delay=0.0005)  # requests overlap in time, as on an engine
    solver = Solver(b, make_strategy(name), KeywordScorer(), global_budget=Budget(generated_tokens=tokens))
    results = await solver.solve_many(PROBLEMS[:problems], concurrency=8)
    assert solver.ledger.generated_tokens <= tokens
    assert sum(r.ledger.generated_tokens for r in results) == solver.ledger.generated_tokens
    assert b.stats().usage.generated_tokens <= tokens
    assert len(results) == problems  # all start before anything is spent; what others hold may come back
    for r in results:
        check_answer(r)


@pytest.mark.parametrize("calls", [1, 3])
@pytest.mark.parametrize("name", STRATEGIES)
async def test_verifier_calls_never_pass_their_budget(name, calls):
    scorer = KeywordScorer()
    r = await Solver(backend(), make_strategy(name), scorer, budget=Budget(verifier_calls=calls, generated_tokens=400)).solve(PROBLEMS[0])
    assert r.ledger.verifier_calls <= calls
    check_answer(r)


@pytest.mark.parametrize("name", STRATEGIES)
async def test_the_wall_deadline_cancels_requests_in_flight_and_keeps_the_best_so_far(name):
    b = backend(delay=0.004)  # a 25-token step takes 0.1 s
    start = time.monotonic()
    r = await Solver(b, make_strategy(name), KeywordScorer(), budget=Budget(wall_s=0.3)).solve(PROBLEMS[0])
    assert time.monotonic() - start < 0.3 + 0.6  # the deadline, plus bookkeeping on a loaded machine
    check_answer(r)


def test_reservations_shrink_requests_to_what_is_left_after_those_in_flight():
    run = Ledger()
    a = Allowance(Budget(generated_tokens=100), Ledger(parent=run), Budget(generated_tokens=60))
    first = a.reserve_tokens(4, 10)  # 40 of the run's 60
    assert (first.samples, first.max_tokens) == (4, 10)
    second = a.reserve_tokens(4, 10)  # 20 left: 5 each
    assert (second.samples, second.max_tokens) == (4, 5)
    third = a.reserve_tokens(4, 10)
    assert (third.samples, third.max_tokens) == (0, 0) and a.exhausted()
    first.reservation.release()
    first.reservation.release()  # idempotent
    assert a.tokens_left() == 40 and run.reserved_tokens == 20
    few = Allowance(Budget(generated_tokens=3), Ledger())
    g = few.reserve_tokens(8, 10)  # fewer tokens than samples: that many samples of one token
    assert (g.samples, g.max_tokens) == (3, 1)


async def test_a_request_the_budget_cannot_pay_for_is_never_sent():
    b = ScriptedBackend(["a long answer that keeps going \\boxed{7}"])
    solver = Solver(b, make_strategy("best_of_n", n=4, max_tokens=32), budget=Budget(generated_tokens=2))
    r = await solver.solve(PROBLEMS[0])
    assert b.calls and all(call.sampling.max_tokens == 1 for call in b.calls) and len(b.calls) == 2
    assert r.ledger.generated_tokens == 2 and len(r.candidates) == 4
    assert r.text == "a"  # a partial answer rather than none


PROBLEM = Problem(id="p1", question="What is 3 + 4?", answer="7")


async def test_budget_stops_cleanly_and_still_answers():
    b = backend()
    r = await Solver(b, make_strategy("beam_search", n=4, width=2, max_steps=40), KeywordScorer(), budget=Budget(generated_tokens=60)).solve(PROBLEM)
    assert r.ledger.generated_tokens <= 60  # a hard limit, in-flight requests included
    assert r.candidates and r.text


async def test_global_budget_stops_new_problems_and_trace_exports(tmp_path):
    b = backend()
    solver = Solver(b, make_strategy("best_of_n", n=2), global_budget=Budget(generated_tokens=100))
    items = [Problem(id=f"p{i}", question=f"q{i}", answer="7") for i in range(10)]
    handed: list[str] = []
    results = await solver.solve_many(items, concurrency=1, on_result=lambda p, r: handed.append(p.id))
    # every problem has its Result, in order, and each went to on_result
    assert [r.problem_id for r in results] == handed == [p.id for p in items]
    started = [r for r in results if r.error is None]
    skipped = [r for r in results if r.error is not None]
    assert started and skipped and results.index(skipped[0]) == len(started)  # once spent, no problem starts
    assert all(r.error == "not started: the run's global budget is spent (generated_tokens 100)" for r in skipped)
    assert solver.ledger.generated_tokens >= 100
    results[0].trace.save(tmp_path / "t.json")
    import json

    data = json.loads((tmp_path / "t.json").read_text())
    assert len(data["nodes"]) == 3 and len(data["edges"]) == 2
