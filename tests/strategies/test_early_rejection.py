"""Early rejection: N partial steps, the best N/M continued from their exact prefix."""

from __future__ import annotations

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.verifiers.arithmetic import ArithmeticScorer

from ..scripts import KeywordScorer
from ..traces import attrs, nodes

PROBLEM = Problem(id="p2", question="What is 3 + 4?", answer="7")


async def test_early_rejection_continues_exactly_n_over_m():
    scorer = KeywordScorer()
    b = ScriptedBackend([("good " * 40 + "\n\n") * 2 + "\\boxed{7}"])  # the whole answer; continuations pick up where the prefix ends
    r = await Solver(b, make_strategy("early_rejection", n=8, width=4, tau=10, step_tokens=400), scorer).solve(PROBLEM)
    g = r.trace.graph
    partial = nodes(r, partial=True)
    by_step: dict[int, list] = {}
    for n, a in g.nodes(data=True):
        if "rejected" in a or a.get("partial"):
            by_step.setdefault(a["depth"], []).append((n, a))
    first = [(n, a) for n, a in g.nodes(data=True) if a["depth"] == 1]
    assert len(first) == 8 and all(a["tokens"] == 10 for _, a in first)  # N candidates cut at τ
    continued = [n for n, _ in first if list(g.successors(n))]
    assert len(continued) == 2  # exactly N/M continued
    for n, a in first:
        if n not in continued:
            assert a.get("rejected") and not list(g.successors(n))  # dropped after τ tokens
    for n in continued:
        (child,) = g.successors(n)
        assert g.nodes[child]["continuation"] and r.trace.node(child).ids[: len(r.trace.node(n).ids)] == r.trace.node(n).ids
    assert partial and r.metrics["rejected"] >= 6 and r.answer == "7"
    # the partial step and its continuation are scored as one step
    cand = r.trace.node(r.candidates[0].node)
    assert len(r.trace.steps(cand)) == 3


ENGINE_PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")


@pytest.mark.engine
async def test_early_rejection_continues_n_over_m_from_the_cached_prefix(engine):
    s = Solver(engine, make_strategy("early_rejection", n=8, width=4, tau=8, step_tokens=48, final_tokens=64, max_steps=3), ArithmeticScorer(), seed=3)
    r = await s.solve(ENGINE_PROBLEM)
    g = r.trace.graph
    first = [n for n, a in g.nodes(data=True) if a["depth"] == 1]
    assert len(first) == 8 and all(g.nodes[n]["tokens"] <= 8 for n in first)
    assert len([n for n in first if list(g.successors(n))]) <= 2  # only N/M continued
    assert len([n for n in first if g.nodes[n].get("rejected")]) == 6  # the rest dropped after τ tokens
    for n, a in attrs(r, "continuation"):
        parent = r.trace.node(next(iter(g.predecessors(n))))
        # the continuation sent the partial step's exact ids: every full block came from the cache
        assert a["cached_tokens"] == (len(parent.ids) - 1) // 32 * 32
    assert r.candidates
