"""Step scorers and judges: rule-based, and read from the real engine's probabilities."""

from __future__ import annotations

import pytest

from ponder.records.problem import Problem
from ponder.records.result import Candidate
from ponder.verifiers import make_scorer
from ponder.verifiers.arithmetic import ArithmeticScorer, claims, evaluate
from ponder.verifiers.judge import Judge
from ponder.verifiers.logprob import LogprobPRM
from ponder.verifiers.voting import aggregate, clusters, select

P = Problem(id="s", question="Tom has 3 apples and buys 4 more. How many apples?", answer="7")


async def test_arithmetic_scorer_checks_claims():
    s = ArithmeticScorer()
    scores = await s.score(P, ["3 + 4 = 7, so 7 apples.", "Then 7 * 2 = 15 and 2 + 2 = 4.", "No numbers here.", "So 12 - <<12-5=7>>7 and 1,000 + 1 = 1,001", "Next 6 / "])
    assert scores == [1.0, 0.5, 1.0, 1.0, 1.0]
    assert claims("a <<2*3=6>>6 b") == [("2*3", "6")]


@pytest.mark.parametrize("expr", ["__import__('os').system('x')", "2 ** 10", "open('f')", "a + 1", "9" * 20 + " * 9"])
def test_arithmetic_parser_rejects_everything_else(expr):
    with pytest.raises(ValueError):
        evaluate(expr)


def test_voting_clusters_by_equivalence():
    cands = [Candidate("", a, score=s) for a, s in [("1,000", 0.2), ("1000", 0.3), ("999", 0.9), ("\\frac{1}{2}", 0.1), ("0.5", 0.1)]]
    assert clusters(cands) == [[0, 1], [2], [3, 4]]
    assert select(cands, "majority").answer == "1,000"  # tie between two groups of two: earliest wins
    assert select(cands, "weighted").answer == "999"
    assert select(cands, "best").answer == "999"
    assert aggregate([0.9, 0.2, 0.5], "min") == 0.2 and aggregate([0.5, 0.5], "prod") == 0.25
    with pytest.raises(ValueError, match="selection"):
        select(cands, "nope")


@pytest.mark.parametrize("layout", ["tag", "chat"])
async def test_logprob_prm_on_the_real_engine(engine, layout):
    prm = make_scorer("logprob", engine, layout=layout)
    good = await prm.score(P, ["Tom starts with 3 apples.", "He buys 4 more, so 3 + 4 = 7 apples."])
    bad = await prm.score(P, ["Tom starts with 3 apples.", "He buys 4 more, so 3 + 4 = 12 bananas."])
    assert len(good) == 2 and all(0.0 < x < 1.0 for x in good + bad)  # probabilities
    assert good[0] == bad[0]  # same first step, same score (memoised, and deterministic)
    assert good[1] != bad[1]  # the score changes with the text
    partial = await prm.score(P, ["Tom starts with 3 apples.", "He buys 4 mo"])  # an unfinished last step
    assert len(partial) == 2


async def test_judge_on_the_real_engine(engine):
    judge = Judge(engine)
    right = await judge.verify(P, "3 + 4 = 7. The answer is \\boxed{7}.")
    wrong = await judge.verify(P, "3 + 4 = 9. The answer is \\boxed{9}.")
    assert 0 < right.score < 1 and 0 < wrong.score < 1 and right.score != wrong.score
    assert right.extracted == "7" and right.correct == (right.score >= 0.5)
    steps = await judge.score(P, ["3 + 4 = 7.", "So 7."])
    assert len(steps) == 2 and all(0 < x < 1 for x in steps)


def test_scorer_registry_errors():
    with pytest.raises(ValueError, match="unknown scorer 'x'"):
        make_scorer("x")
    with pytest.raises(ValueError, match="needs a backend"):
        make_scorer("logprob")


async def test_logprob_prm_and_judge_on_the_scripted_backend():
    from ponder.backends.scripted import ScriptedBackend

    b = ScriptedBackend(["x"])
    prm = LogprobPRM(b)
    a, c = await prm.score(P, ["one", "two"]), await prm.score(P, ["one", "three"])
    assert a[0] == c[0] and a[1] != c[1]
    assert 0 < (await Judge(b).verify(P, "\\boxed{7}")).score < 1


async def test_a_judge_scored_trajectory_asks_each_step_prefix_once():
    from ponder.backends.scripted import ScriptedBackend
    from ponder.runtime.solver import Solver
    from ponder.strategies.base import make_strategy

    def forty(call):  # forty short steps, then an answer
        depth = call.generated.count("\n\n")
        return "So \\boxed{7}." if depth >= 40 else f"step {depth}.\n\n"

    b = ScriptedBackend(forty)
    search = make_strategy("beam_search", n=1, width=1, max_steps=41, temperature=0.0, step_tokens=16, final_tokens=16)
    r = await Solver(b, search, Judge(b)).solve(P)
    assert r.answer == "7" and r.ledger.verifier_calls == 41
    # a trajectory scored after each of its 41 steps: 41 questions (one per new prefix), not 41 * 42 / 2
    assert r.ledger.verifier_requests == 41
    assert r.ledger.requests + r.ledger.verifier_requests == b.stats().requests
