"""Particle filtering and particle Gibbs: resampling by the reward's weights, from each problem's own
seed stream."""

from __future__ import annotations

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy

from ..scripts import KeywordScorer, backend
from ..traces import depth_nodes

PROBLEM = Problem(id="p1", question="What is 3 + 4?", answer="7")


async def test_particle_filtering_resamples_towards_high_weights():
    r = await Solver(backend(), make_strategy("particle_filtering", particles=8, weight_temperature=0.05), KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    second = depth_nodes(r, 2)
    assert len(second) == 8
    for n in second:
        parent = next(iter(g.predecessors(n)))
        assert "good" in g.nodes[parent]["step"]  # bad particles were resampled away
    first = [g.nodes[n]["weight"] for n in depth_nodes(r, 1)]
    assert len(first) == 8 and sum(first) == pytest.approx(1.0)
    assert r.metrics["resamples"] == 3 and r.answer == "7"


async def test_particle_filtering_log_weight_is_the_logit_of_the_reward():
    r = await Solver(backend(), make_strategy("particle_filtering", particles=8), KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    weights = {"good" in g.nodes[n]["step"]: g.nodes[n]["weight"] for n in depth_nodes(r, 1)}
    # logit(0.9) - logit(0.1) = ln 81: a softmax over the raw rewards would give e^0.8 = 2.2
    assert weights[True] / weights[False] == pytest.approx(81.0, rel=1e-9)


def early_finisher(call):
    depth = call.generated.count("\n\n")
    if depth == 0 and call.index == 0:
        return "Quick: \\boxed{7}"
    return "So \\boxed{9}" if depth >= 3 else f"slow step {depth}.\n\n"


class SureScorer:
    async def score(self, problem, steps):
        return [0.9999 if "{7}" in s else 0.0001 for s in steps]


async def test_particle_filtering_keeps_finished_particles_and_resamples_them():
    b = ScriptedBackend(early_finisher)
    r = await Solver(b, make_strategy("particle_filtering", particles=4), SureScorer()).solve(PROBLEM)
    # the finished particle (weight ~1 - 1e-8) is drawn four times: every copy is finished, none is continued
    assert r.metrics["finished_resampled"] == 4 and r.metrics["resamples"] == 1
    assert r.ledger.requests == 4 and not depth_nodes(r, 2)  # the first step's four samples, nothing after
    assert [c.answer for c in r.candidates] == ["7"] and r.answer == "7"


async def test_particle_gibbs_keeps_the_last_iterations_best_as_reference():
    r = await Solver(backend(), make_strategy("particle_filtering", particles=4, iterations=2), KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    first = [n for n in depth_nodes(r, 1) if g.nodes[n]["iteration"] == 0]
    second = [n for n in depth_nodes(r, 1) if g.nodes[n]["iteration"] == 1]
    assert len(first) == 4 and len(second) == 3  # the reference is not sampled again: P - 1 new particles
    assert len({g.nodes[n]["request"] for n in second}) == 1
    # the reference (the best iteration-0 trajectory) always survives into the last population
    (reference,) = [c for c in r.candidates if g.nodes[c.node]["iteration"] == 0]
    assert reference.score == max(g.nodes[n]["score"] for n, a in g.nodes(data=True) if a.get("iteration") == 0 and a["finish"] == "eos")
    assert r.metrics["iterations"] == 2 and r.answer == "7"


async def test_particle_filtering_resamples_from_each_problems_own_seed_stream():
    # two problems with the same question sample the same steps; only the resampling draws differ
    def expanded(r):  # which nodes were continued at each depth: the resampling's choices
        g = r.trace.graph
        return sorted((g.nodes[p]["depth"], p) for p in g.nodes if p != 0 and list(g.successors(p)))

    runs = [await Solver(backend(), make_strategy("particle_filtering", particles=8, weight_temperature=4.0), KeywordScorer(), seed=3)
            .solve(Problem(id=pid, question="What is 3 + 4?", answer="7")) for pid in ("a", "b", "a")]
    assert expanded(runs[0]) == expanded(runs[2])  # a problem's draws repeat
    assert expanded(runs[0]) != expanded(runs[1])
