"""Best-of-N: majority and pass@k, the selection rules; on the real engine the prompt is computed once."""

from __future__ import annotations

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy

from ..engine_runs import solver
from ..scripts import KeywordScorer

PROBLEM = Problem(id="p1", question="What is 3 + 4?", answer="7")


async def test_best_of_n_majority_and_pass_at_k():
    answers = ["\\boxed{7}", "\\boxed{8}", "7 is it: \\boxed{7}", "\\boxed{9}"]
    b = ScriptedBackend(lambda c: answers[c.index])
    r = await Solver(b, make_strategy("best_of_n", n=4)).solve(PROBLEM)
    assert r.answer == "7" and r.correct is True
    assert [c.answer for c in r.candidates] == ["7", "8", "7", "9"]
    assert r.metrics["pass@1"] == pytest.approx(0.5) and r.metrics["pass@4"] == 1.0
    # one n=4 request: four engine requests, the three after the first read the prompt's full
    # blocks (16 tokens each in the scripted cache) from the cache
    p = len(b.calls[0].prompt)
    assert r.ledger.requests == 4 and r.ledger.prompt_tokens == 4 * p
    assert r.ledger.cached_tokens == 3 * ((p - 1) // 16 * 16) > 0


async def test_best_of_n_selection_rules_differ_as_specified():
    # one highly scored 8 against eleven weakly scored 7s: 0.9 alone vs 11 x 0.1 = 1.1
    answers = ["good \\boxed{8}"] + ["bad \\boxed{7}"] * 11
    for selection, expected in [("best", "8"), ("weighted", "7"), ("majority", "7"), ("first", "8")]:
        b = ScriptedBackend(lambda c: answers[c.index])
        scorer = KeywordScorer()
        r = await Solver(b, make_strategy("best_of_n", n=12, selection=selection), scorer).solve(PROBLEM)
        assert r.answer == expected, selection
        assert r.ledger.verifier_calls == (12 if selection in ("best", "weighted") else 0)


ENGINE_PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")


@pytest.mark.engine
async def test_best_of_n_computes_the_prompt_once(engine):
    r = await solver(engine, "best_of_n", n=8, max_tokens=64).solve(ENGINE_PROBLEM)
    assert len(r.candidates) == 8 and r.ledger.requests == 8
    prompt = r.ledger.prompt_tokens // 8
    full_blocks = (prompt - 1) // engine.config.block_size * engine.config.block_size
    # seven of the eight samples read the prompt's full blocks from the prefix cache
    assert full_blocks > 0 and r.ledger.cached_tokens >= 7 * full_blocks
    assert 0 < r.ledger.generated_tokens <= 8 * 64
    assert "pass@8" in r.metrics and r.correct is not None
