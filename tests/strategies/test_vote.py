"""Vote: K runs of a strategy as sub-runs, their answers voted (or weighted by score); on the real
engine every sub-run's request is in the problem's ledger and its tree."""

from __future__ import annotations

from collections import Counter

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.seeds import Seeds
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.verifiers.voting import select

from ..traces import generated_in_tree, sub_runs

PROBLEM = Problem(id="p", question="What is 3 + 4?", answer="7")


def by_run(answers: list[str], seed: int = 0, delimiter: str = "") -> ScriptedBackend:
    """Run i of a vote (best_of_n n=1, one sample seeded at its stream's start) answers answers[i]."""
    starts = {Seeds(seed * 1_000_003).child(i).start: a for i, a in enumerate(answers)}
    return ScriptedBackend(lambda call: f"Thinking.{delimiter}The answer is \\boxed{{{starts[call.seed]}}}.")


async def test_vote_over_k_runs_is_the_majority_of_their_answers():
    answers = ["5", "5", "9", "9", "9"]
    r = await Solver(by_run(answers), make_strategy("vote", k=5)).solve(PROBLEM)
    assert [c.answer for c in r.candidates] == answers
    assert r.answer == Counter(answers).most_common(1)[0][0] == "9"
    assert r.metrics["share"] == 0.6 and r.metrics["runs"] == 5
    markers = [a for _, a in r.trace.graph.nodes(data=True) if a.get("subrun")]
    assert sorted(a["seed"] for a in markers) == [0, 1, 2, 3, 4]


async def test_weighted_vote_adds_up_each_runs_score():
    class LikesFive:
        calls = 0

        async def score(self, problem, steps):
            self.calls += 1
            return [0.9 if "{5}" in steps[-1] else 0.1]

    scorer = LikesFive()
    r = await Solver(by_run(["5", "5", "9", "9", "9"]), make_strategy("vote", k=5, selection="weighted"), scorer).solve(PROBLEM)
    assert r.answer == "5"  # 2 x 0.9 outweighs 3 x 0.1
    assert scorer.calls == 5 == r.ledger.verifier_calls


ENGINE_PROBLEM = Problem(id="e", question="What is 12 + 7?", answer="19")


@pytest.mark.engine
async def test_vote_on_the_engine(engine):
    vote = make_strategy("vote", k=3, strategy={"name": "best_of_n", "config": {"n": 2, "max_tokens": 48}})
    r = await Solver(engine, vote, seed=5).solve(ENGINE_PROBLEM)
    assert r.error is None and sub_runs(r) == [("best_of_n", 2)] * 3
    assert r.ledger.requests == 6 and r.ledger.generated_tokens == generated_in_tree(r) > 0
    assert len(r.candidates) == 3 and r.answer == select(list(r.candidates), "majority").answer
    samples = [r.trace.graph.nodes[n]["step"] for n in r.trace.graph.nodes if n and not r.trace.graph.nodes[n].get("subrun")]
    assert len(set(samples)) > 1  # six seeds, not one seed six times
