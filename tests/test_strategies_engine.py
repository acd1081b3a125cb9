"""Every strategy on the real engine with the embedded model; behaviour read from ledger and trace."""

from __future__ import annotations

import pytest

from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.verifiers.arithmetic import ArithmeticScorer

PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")
SMALL = dict(step_tokens=32, final_tokens=64, max_steps=3)


def solver(engine, name, **config):
    return Solver(engine, make_strategy(name, **config), ArithmeticScorer(), seed=1)


async def test_best_of_n_computes_the_prompt_once(engine):
    r = await solver(engine, "best_of_n", n=8, max_tokens=64).solve(PROBLEM)
    assert len(r.candidates) == 8 and r.ledger.requests == 8
    prompt = r.ledger.prompt_tokens // 8
    full_blocks = (prompt - 1) // engine.config.block_size * engine.config.block_size
    # seven of the eight samples read the prompt's full blocks from the prefix cache
    assert full_blocks > 0 and r.ledger.cached_tokens >= 7 * full_blocks
    assert 0 < r.ledger.generated_tokens <= 8 * 64
    assert "pass@8" in r.metrics and r.correct is not None


@pytest.mark.parametrize("name,config", [
    ("beam_search", dict(n=4, width=2, **SMALL)),
    ("dvts", dict(n=4, width=2, **SMALL)),
    ("particle_filtering", dict(particles=4, **SMALL)),
])
async def test_step_search_reuses_the_prefix_cache(engine, name, config):
    r = await solver(engine, name, **config).solve(PROBLEM)
    assert r.candidates and all(c.score is not None for c in r.candidates)
    g = r.trace.graph
    later = [a for _, a in g.nodes(data=True) if a["depth"] >= 2]
    assert later, "the search went past its first step"
    # every request after the first step continues a token-exact prefix: whole blocks come from the cache
    assert all(a["cached_tokens"] >= 32 for a in later)
    assert r.ledger.cached_tokens > 0 and r.ledger.verifier_calls >= len(g) - 1


async def test_dvts_hands_all_n_leaves_to_the_vote(engine):
    r = await solver(engine, "dvts", n=4, width=2, **SMALL).solve(PROBLEM)
    g = r.trace.graph
    assert len(r.candidates) == 4 and all(c.score is not None for c in r.candidates)
    siblings = {}
    for c in r.candidates:
        siblings.setdefault(next(iter(g.predecessors(c.node))), []).append(c.node)
    assert sorted(len(v) for v in siblings.values()) == [2, 2]  # the M last-step siblings of each subtree


async def test_beam_search_with_lookahead_runs(engine):
    r = await solver(engine, "beam_search", n=4, width=2, lookahead=1, **SMALL).solve(PROBLEM)
    g = r.trace.graph
    ahead = [n for n, a in g.nodes(data=True) if a.get("lookahead")]
    assert r.candidates and ahead  # steps were rolled out one greedy step before being scored
    for n in ahead:  # each rollout is one greedy request continuing a sampled step, discarded after scoring
        parent = next(iter(g.predecessors(n)))
        assert not g.nodes[parent].get("lookahead") and n not in {c.node for c in r.candidates}
        assert g.nodes[parent]["score"] == g.nodes[n]["score"]  # the step is scored by its rollout's score


async def test_first_finish_aborts_the_losers(engine):
    r = await solver(engine, "first_finish", n=4, max_tokens=256).solve(PROBLEM)
    assert "fallback" not in r.metrics  # seeded: at least one sample ends with EOS within 256 tokens
    g = r.trace.graph
    samples = {a["sample"]: a for _, a in g.nodes(data=True) if "sample" in a}
    assert sorted(samples) == [0, 1, 2, 3]
    aborted = [a for a in samples.values() if a["finish"] == "abort"]
    assert r.ledger.aborted_requests == len(aborted) == r.metrics["aborted"]
    # the winner is the sample whose last token came first; no sample that got its last token is aborted
    eos = [a for a in samples.values() if a["finish"] == "eos"]
    (chosen,) = [a for _, a in g.nodes(data=True) if a.get("chosen")]
    assert chosen["t_end"] == min(a["t_end"] for a in eos)
    winner = r.metrics["winner_tokens"]
    # losers stopped within a few tokens of the winner's finish (all decode in the same batch)
    assert all(a["tokens"] <= winner + 16 for a in aborted)
    assert engine.unfinished_requests() == 0


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
