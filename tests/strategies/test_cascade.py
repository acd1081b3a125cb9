"""Cascade: stops at the first confident stage and escalates otherwise, on agreement or on scores;
nested configs are checked all the way down."""

from __future__ import annotations

import pytest

from ponder.backends.scripted import ScriptCall, ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy

from ..scripts import KeywordScorer
from ..traces import generated_in_tree, sub_runs

PROBLEM = Problem(id="p", question="What is 3 + 4?", answer="7")


def cascade_script(call: ScriptCall) -> str:
    """The easy problem always gets 7; the hard one a different answer per seed."""
    if "easy" in call.prompt:
        return "The answer is \\boxed{7}."
    return f"The answer is \\boxed{{{call.seed % 97}}}."


CASCADE = dict(stages=[{"name": "best_of_n", "config": {"n": 4, "max_tokens": 64}},
                       {"name": "best_of_n", "config": {"n": 8, "max_tokens": 64}}], threshold=0.75)


async def test_cascade_stops_at_the_first_stage_on_an_easy_problem():
    b = ScriptedBackend(cascade_script)
    r = await Solver(b, make_strategy("cascade", **CASCADE)).solve(Problem(id="e", question="easy: 3 + 4?"))
    assert r.metrics["stage"] == 1 and r.metrics["confidence"] == 1.0 and r.answer == "7"
    assert len(b.calls) == 4 and r.ledger.requests == 4
    assert [a["subrun"] for _, a in r.trace.graph.nodes(data=True) if a.get("subrun")] == ["best_of_n"]


async def test_cascade_escalates_on_a_hard_problem():
    b = ScriptedBackend(cascade_script)
    r = await Solver(b, make_strategy("cascade", **CASCADE)).solve(Problem(id="h", question="hard: 3 + 4?"))
    assert r.metrics["stage"] == 2 and r.metrics["confidence"] < 0.75
    assert len(b.calls) == 12 and r.ledger.generated_tokens == r.metrics["stage1_tokens"] + r.metrics["stage2_tokens"]
    assert len(r.candidates) == 8  # the answering stage's candidates
    assert len([1 for _, a in r.trace.graph.nodes(data=True) if a.get("subrun")]) == 2


def guess_or_steps(guess: str):
    """best_of_n's whole answers (asked with max_tokens=100) are `guess`; beam search's steps are good."""
    def script(call: ScriptCall) -> str:
        if call.sampling.max_tokens == 100:
            return f"{guess} guess. The answer is \\boxed{{7}}."
        depth = call.generated.count("\n\n")
        return "good, so the answer is \\boxed{7}." if depth >= 2 else f"good step {depth}.\n\n"
    return script


@pytest.mark.parametrize("guess,stage,confidence", [("good", 1, 0.9), ("bad", 2, 0.9)])
async def test_cascade_on_scores_escalates_from_a_low_scored_answer_to_a_search(guess, stage, confidence):
    stages = [{"name": "best_of_n", "config": {"n": 2, "selection": "best", "max_tokens": 100}}, {"name": "beam_search", "config": {"n": 4, "width": 2}}]
    cascade = make_strategy("cascade", stages=stages, confidence="score", threshold=0.8)
    assert cascade.needs_scorer
    r = await Solver(ScriptedBackend(guess_or_steps(guess)), cascade, KeywordScorer()).solve(PROBLEM)
    ran = [a["subrun"] for _, a in r.trace.graph.nodes(data=True) if a.get("subrun")]
    assert r.metrics["stage"] == stage and ran == ["best_of_n", "beam_search"][:stage]
    assert r.metrics["confidence"] == pytest.approx(confidence) and r.answer == "7"


@pytest.mark.parametrize("config,path", [
    (dict(stages=[{"name": "best_of_n", "config": {"n": 0}}]), "stages.0.config.n"),
    (dict(stages=["best_of_n", {"name": "nope"}]), "stages.1.name"),
    (dict(stages=[{"name": "vote", "config": {"strategy": {"name": "beam_search", "config": {"width": "x"}}}}]), "stages.0.config.strategy.config.width"),
    (dict(stages=[{"name": "best_of_n", "bogus": 1}]), "stages.0.bogus"),
    (dict(stages=[]), "stages"),
])
def test_nested_configs_are_checked_all_the_way_down_naming_the_path(config, path):
    with pytest.raises(ValueError, match=f"strategy cascade: field '{path}'"):
        make_strategy("cascade", **config)


ENGINE_PROBLEM = Problem(id="e", question="What is 12 + 7?", answer="19")


@pytest.mark.engine
async def test_cascade_on_the_engine(engine):
    stages = [{"name": "best_of_n", "config": {"n": 2, "max_tokens": 32}}, {"name": "best_of_n", "config": {"n": 4, "max_tokens": 32}}]
    r = await Solver(engine, make_strategy("cascade", stages=stages, threshold=1.0), seed=3).solve(ENGINE_PROBLEM)
    stage = int(r.metrics["stage"])
    assert r.error is None and sub_runs(r) == [("best_of_n", 2), ("best_of_n", 4)][:stage]
    assert r.ledger.requests == [2, 6][stage - 1]
    tokens = sum(r.metrics[f"stage{i}_tokens"] for i in range(1, stage + 1))
    assert r.ledger.generated_tokens == tokens == generated_in_tree(r) > 0
    assert len(r.candidates) == [2, 4][stage - 1]
