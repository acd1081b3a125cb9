"""DVTS: independent subtrees whose N leaves all vote, each sample with a seed of its own."""

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


async def test_dvts_subtrees_never_compete_and_all_n_leaves_vote():
    b, scorer = backend(), KeywordScorer()
    r = await Solver(b, make_strategy("dvts", n=8, width=4), scorer).solve(PROBLEM)
    g = r.trace.graph
    for depth in (1, 2, 3):
        nodes = depth_nodes(r, depth)
        assert len(nodes) == 8  # each subtree expands its own node M times
        parents = {next(iter(g.predecessors(n))) for n in nodes}
        # one parent per subtree (both start at the prompt): no subtree took another's beam
        assert len(parents) == (1 if depth == 1 else 2)
        assert {g.nodes[n]["subtree"] for n in nodes} == {0, 1}
    # N leaves: the M last-step siblings of each of the N/M subtrees
    assert len(r.candidates) == 8 and len({c.node for c in r.candidates}) == 8
    by_parent = Counter(next(iter(g.predecessors(c.node))) for c in r.candidates)
    assert sorted(by_parent.values()) == [4, 4]
    assert all(g.nodes[c.node]["depth"] == 4 for c in r.candidates)
    assert r.answer == "7"


async def test_no_two_samples_of_a_problem_share_a_seed():
    # DVTS sends n/width root requests of `width` samples each; sample i of a request is seeded
    # seed + i, so consecutive requests must start `width` seeds apart
    b = backend()
    await Solver(b, make_strategy("dvts", n=16, width=4, max_steps=2), KeywordScorer()).solve(PROBLEM)
    seeds = [(c.prompt, c.seed) for c in b.calls]
    assert len(seeds) >= 16 and len(set(seeds)) == len(seeds)


ENGINE_PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")
SMALL = dict(step_tokens=32, final_tokens=64, max_steps=3)


@pytest.mark.engine
async def test_dvts_hands_all_n_leaves_to_the_vote(engine):
    r = await solver(engine, "dvts", n=4, width=2, **SMALL).solve(ENGINE_PROBLEM)
    g = r.trace.graph
    assert len(r.candidates) == 4 and all(c.score is not None for c in r.candidates)
    siblings = {}
    for c in r.candidates:
        siblings.setdefault(next(iter(g.predecessors(c.node))), []).append(c.node)
    assert sorted(len(v) for v in siblings.values()) == [2, 2]  # the M last-step siblings of each subtree
