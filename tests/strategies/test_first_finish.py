"""First-finish: the first sample to end wins and the rest are aborted."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy

from ..engine_runs import solver

PROBLEM = Problem(id="p1", question="What is 3 + 4?", answer="7")


async def test_first_finish_returns_the_first_finisher_and_aborts_the_rest():
    lengths = [120, 40, 200, 90]
    b = ScriptedBackend(lambda c: "x" * lengths[(c.seed or 0) % 4] + " \\boxed{5}", token_delay_s=0.002)
    r = await Solver(b, make_strategy("first_finish", n=4)).solve(PROBLEM)
    assert len(r.text) == 40 + len(" \\boxed{5}") and r.answer == "5"
    assert r.ledger.aborted_requests == 3 and r.metrics["aborted"] == 3
    assert 0 < r.ledger.aborted_tokens < 3 * 60  # the losers stopped at about the winner's length
    aborted = [a for _, a in r.trace.graph.nodes(data=True) if a["finish"] == "abort"]
    assert len(aborted) == 3
    assert b.stats().aborted_requests == 3


class LateEnd:
    """A backend whose streams end some time after their last token arrived, as vLLM's do (the
    reader still waits for the end marker): `tail(seed)` seconds."""

    def __init__(self, inner, tail):
        self.inner, self.tail = inner, tail

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def stream(self, ids, sampling):
        async for d in self.inner.stream(ids, sampling):
            yield d
            if d.finish_reason is not None:
                await asyncio.sleep(self.tail(sampling.seed))


async def test_first_finish_winner_is_the_earliest_last_token_and_no_finisher_is_aborted():
    lengths = [200, 40, 50, 200]
    inner = ScriptedBackend(lambda c: "x" * lengths[c.seed % 4] + " \\boxed{5}", token_delay_s=0.002)
    # sample 1 gets its last token first but its stream ends last: sample 2's task ends first
    b = LateEnd(inner, lambda seed: 0.3 if seed % 4 == 1 else 0.0)
    r = await Solver(b, make_strategy("first_finish", n=4)).solve(PROBLEM)
    assert len(r.text) == 40 + len(" \\boxed{5}")
    finish = {a["sample"]: a["finish"] for _, a in r.trace.graph.nodes(data=True) if "sample" in a}
    assert finish == {0: "abort", 1: "eos", 2: "eos", 3: "abort"}  # sample 1 was cancelled after its last token
    assert r.metrics["aborted"] == 2 == r.ledger.aborted_requests == inner.stats().aborted_requests


async def test_first_finish_ignores_length_capped_samples_and_sync_mode():
    lengths = [30, 500, 60, 500]
    b = ScriptedBackend(lambda c: "y" * lengths[(c.seed or 0) % 4] + " \\boxed{2}", token_delay_s=0.001)
    r = await Solver(b, make_strategy("first_finish", n=4, max_tokens=100, mode="sync")).solve(PROBLEM)
    assert r.metrics["winner_tokens"] == min(x for x in [len(c.text) for c in r.candidates if c.finish == "eos"]) + 1
    b2 = ScriptedBackend(lambda c: "z" * 500, token_delay_s=0.0)
    r2 = await Solver(b2, make_strategy("first_finish", n=3, max_tokens=50)).solve(PROBLEM)
    assert r2.metrics["fallback"] == 1 and all(c.finish == "length" for c in r2.candidates)


ENGINE_PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")


@pytest.mark.engine
async def test_first_finish_aborts_the_losers(engine):
    r = await solver(engine, "first_finish", n=4, max_tokens=256).solve(ENGINE_PROBLEM)
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
