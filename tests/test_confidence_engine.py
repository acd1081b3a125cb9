"""The confidence scorer on the real engine: its values come with the samples, so a search
scored by it makes exactly the requests of its samples and no verifier call."""

from __future__ import annotations

import pytest

from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.verifiers.confidence import ConfidenceScorer

PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")


@pytest.mark.engine
@pytest.mark.parametrize("kind", ["self_certainty", "token_confidence"])
async def test_beam_search_scored_by_confidence_makes_only_its_sampling_requests(engine, kind):
    strategy = make_strategy("beam_search", n=4, width=2, step_tokens=32, final_tokens=64, max_steps=3, dedup=False)
    before = engine.stats().requests
    r = await Solver(engine, strategy, ConfidenceScorer(kind=kind), seed=1).solve(PROBLEM)
    g = r.trace.graph
    samples = [a for i, a in g.nodes(data=True) if i != 0]  # every sample the search asked for is a node
    assert any(a["depth"] >= 2 for a in samples), "the search went past its first step"
    assert r.ledger.requests == len(samples) == engine.stats().requests - before
    assert r.ledger.verifier_calls == 0 and r.ledger.verifier_requests == 0 and r.ledger.verifier_tokens == 0
    # the engine returned top-k logprobs for every generated token, and they score the beams
    assert all(a["confidence_tokens"] == a["tokens"] > 0 for a in samples)
    scores = [a["score"] for a in samples]
    assert all(0.0 < s < 1.0 for s in scores) and len(set(scores)) > 1
    assert r.candidates and all(c.score is not None for c in r.candidates)
