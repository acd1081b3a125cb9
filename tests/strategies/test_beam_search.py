"""Beam search: keeps N/M beams and expands each into M, with dedup and lookahead; on the scripted
backend and on the real engine."""

from __future__ import annotations

from collections import Counter

import pytest

from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy

from ..engine_runs import solver
from ..scripts import KeywordScorer, backend
from ..traces import depth_nodes

PROBLEM = Problem(id="p1", question="What is 3 + 4?", answer="7")


async def test_beam_search_keeps_n_over_m_and_expands_m():
    b, scorer = backend(), KeywordScorer()
    r = await Solver(b, make_strategy("beam_search", n=8, width=4, dedup=False), scorer).solve(PROBLEM)
    assert len(depth_nodes(r, 1)) == 8  # first step: N samples from the prompt
    for depth in (2, 3):
        nodes = depth_nodes(r, depth)
        parents = Counter(r.trace.graph.nodes[next(iter(r.trace.graph.predecessors(n)))]["step"] for n in nodes)
        assert len(nodes) == 8 and len(parents) == 2  # N/M = 2 kept, each expanded M = 4 times
        assert all(count == 4 for count in parents.values())
        assert all("good" in step for step in parents)  # the kept beams were the best scored
    assert r.answer == "7" and r.correct
    assert all(c.finish == "eos" for c in r.candidates)


async def test_beam_search_dedup_and_lookahead():
    r = await Solver(backend(), make_strategy("beam_search", n=4, width=2, lookahead=1), KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    assert any(a.get("lookahead") for _, a in g.nodes(data=True))
    texts = [r.trace.node(n).text for n in depth_nodes(r, 2)]
    assert len(texts) == len(set(texts))  # duplicates were dropped
    assert r.answer == "7"


ENGINE_PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")
SMALL = dict(step_tokens=32, final_tokens=64, max_steps=3)


@pytest.mark.engine
async def test_beam_search_with_lookahead_runs(engine):
    r = await solver(engine, "beam_search", n=4, width=2, lookahead=1, **SMALL).solve(ENGINE_PROBLEM)
    g = r.trace.graph
    ahead = [n for n, a in g.nodes(data=True) if a.get("lookahead")]
    assert r.candidates and ahead  # steps were rolled out one greedy step before being scored
    for n in ahead:  # each rollout is one greedy request continuing a sampled step, discarded after scoring
        parent = next(iter(g.predecessors(n)))
        assert not g.nodes[parent].get("lookahead") and n not in {c.node for c in r.candidates}
        assert g.nodes[parent]["score"] == g.nodes[n]["score"]  # the step is scored by its rollout's score
