"""Vote and cascade on the real engine: every sub-run's request is in the problem's ledger and
its tree, exactly."""

from __future__ import annotations

import pytest

from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.verifiers.voting import select

pytestmark = pytest.mark.engine

PROBLEM = Problem(id="e", question="What is 12 + 7?", answer="19")


def sub_runs(result) -> list[tuple[str, int]]:
    """(strategy, samples) of each sub-run in the trace, in order."""
    g = result.trace.graph
    return [(a["subrun"], g.out_degree(n)) for n, a in sorted(g.nodes(data=True)) if a.get("subrun")]


def generated_in_tree(result) -> int:
    return sum(a["tokens"] for n, a in result.trace.graph.nodes(data=True) if n != 0)


async def test_vote_on_the_engine(engine):
    vote = make_strategy("vote", k=3, strategy={"name": "best_of_n", "config": {"n": 2, "max_tokens": 48}})
    r = await Solver(engine, vote, seed=5).solve(PROBLEM)
    assert r.error is None and sub_runs(r) == [("best_of_n", 2)] * 3
    assert r.ledger.requests == 6 and r.ledger.generated_tokens == generated_in_tree(r) > 0
    assert len(r.candidates) == 3 and r.answer == select(list(r.candidates), "majority").answer
    samples = [r.trace.graph.nodes[n]["step"] for n in r.trace.graph.nodes if n and not r.trace.graph.nodes[n].get("subrun")]
    assert len(set(samples)) > 1  # six seeds, not one seed six times


async def test_cascade_on_the_engine(engine):
    stages = [{"name": "best_of_n", "config": {"n": 2, "max_tokens": 32}}, {"name": "best_of_n", "config": {"n": 4, "max_tokens": 32}}]
    r = await Solver(engine, make_strategy("cascade", stages=stages, threshold=1.0), seed=3).solve(PROBLEM)
    stage = int(r.metrics["stage"])
    assert r.error is None and sub_runs(r) == [("best_of_n", 2), ("best_of_n", 4)][:stage]
    assert r.ledger.requests == [2, 6][stage - 1]
    tokens = sum(r.metrics[f"stage{i}_tokens"] for i in range(1, stage + 1))
    assert r.ledger.generated_tokens == tokens == generated_in_tree(r) > 0
    assert len(r.candidates) == [2, 4][stage - 1]
