"""Strategies made of strategies: sub-runs share the problem's ledger, budgets, trace and
seeds; vote, cascade and PDR's drafter are built on them."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

import networkx as nx
import pytest

from ponder.backends.scripted import ScriptCall, ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.budget import Budget
from ponder.runtime.context import Context
from ponder.runtime.solver import Solver
from ponder.runtime.seeds import Seeds
from ponder.strategies.base import Configured, StrategyConfig, make_strategy

from .scripts import KeywordScorer, backend

PROBLEM = Problem(id="p", question="What is 3 + 4?", answer="7")


class SampleThenSearch(Configured[StrategyConfig]):
    """One sample of its own, then a beam search as a sub-run; answers with the search."""

    name: ClassVar[str] = "sample_then_search"
    Config: ClassVar[type[StrategyConfig]] = StrategyConfig
    needs_scorer: ClassVar[bool] = True

    async def run(self, ctx: Context):
        (own,) = await ctx.extend(ctx.tree.root, ctx.sampling(temperature=0.8, max_tokens=64))
        sub = await ctx.run("beam_search", n=4, width=2, max_steps=5)
        self.own, self.sub = own, sub
        return ctx.result(self.name, None, [ctx.candidate(own), *sub.candidates])


async def test_a_sub_run_spends_and_scores_in_the_parents_ledger():
    scorer, b = KeywordScorer(), backend()
    strategy = SampleThenSearch(StrategyConfig())
    r = await Solver(b, strategy, scorer).solve(PROBLEM)
    sub = strategy.sub
    own_tokens = len(strategy.own.generated_ids)
    assert sub.ledger.generated_tokens > 0 and sub.ledger.verifier_calls > 0
    assert r.ledger.generated_tokens == own_tokens + sub.ledger.generated_tokens == b.stats().usage.generated_tokens
    assert r.ledger.requests == 1 + sub.ledger.requests == len(b.calls)
    assert r.ledger.verifier_calls == sub.ledger.verifier_calls == scorer.calls


async def test_a_sub_run_lives_in_its_own_subtree_and_scores_its_own_steps():
    seen: list[list[str]] = []

    class Recording(KeywordScorer):
        async def score(self, problem, steps):
            seen.append(list(steps))
            return await super().score(problem, steps)

    events = []
    strategy = SampleThenSearch(StrategyConfig())
    r = await Solver(backend(), strategy, Recording()).solve(PROBLEM, on_event=events.append)
    g = r.trace.graph
    (marker,) = [n for n, a in g.nodes(data=True) if a.get("subrun")]
    assert g.nodes[marker]["subrun"] == "beam_search" and list(g.predecessors(marker)) == [0]
    searched = {c.node for c in strategy.sub.candidates}
    assert searched and all(marker in nx.ancestors(g, n) for n in searched)
    assert strategy.own.id not in nx.descendants(g, marker)
    # depths and steps count from the sub-run's root, as at the top: no empty marker step
    first_steps = [n for n in g.successors(marker)]
    assert first_steps and all(g.nodes[n]["depth"] == 1 for n in first_steps)
    assert seen and all(all(s.strip() for s in steps) for steps in seen)
    assert {e.node for e in events if e.kind == "added"} == set(g.nodes) - {0}


async def test_a_budget_the_sub_run_would_pass_is_held():
    b = backend()
    r = await Solver(b, SampleThenSearch(StrategyConfig()), KeywordScorer(), budget=Budget(generated_tokens=120)).solve(PROBLEM)
    unbounded = await Solver(backend(), SampleThenSearch(StrategyConfig()), KeywordScorer()).solve(PROBLEM)
    assert unbounded.ledger.generated_tokens > 120  # the sub-run alone would pass it
    assert r.ledger.generated_tokens <= 120 and b.stats().usage.generated_tokens <= 120
    calls = await Solver(backend(), SampleThenSearch(StrategyConfig()), KeywordScorer(), budget=Budget(verifier_calls=3)).solve(PROBLEM)
    assert calls.ledger.verifier_calls == 3 < unbounded.ledger.verifier_calls


async def test_no_seed_of_a_problem_repeats_across_parent_and_sub_runs():
    b = backend()
    await Solver(b, make_strategy("vote", k=3, strategy={"name": "best_of_n", "config": {"n": 4}}), seed=2).solve(PROBLEM)
    seeds = [c.seed for c in b.calls]
    assert len(seeds) == 12 and len(set(seeds)) == 12
    b2 = backend()
    await Solver(b2, SampleThenSearch(StrategyConfig()), KeywordScorer()).solve(PROBLEM)
    assert len({c.seed for c in b2.calls}) == len(b2.calls) > 5


def test_seed_streams_are_fixed_by_their_number_and_never_hand_out_a_seed_twice():
    top = Seeds(0)
    a, b = top.child(0), top.child(1)
    assert Seeds(0).child(0).start == a.start != b.start
    taken = [top.take(4), a.take(3), b.take(2)]
    clash = Seeds(taken[0] + 2, top.taken)  # a stream starting inside seeds already out
    s = clash.take(3)
    used = [x for t, n in zip(taken + [s], (4, 3, 2, 3)) for x in range(t, t + n)]
    assert len(used) == len(set(used)) == 12


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


async def test_pdr_drafts_with_a_sub_strategy():
    pdr = make_strategy("pdr", schedule=[2, 1], workspace_tokens=64, max_tokens=200, drafter={"name": "beam_search", "config": {"n": 4, "width": 2}})
    assert pdr.needs_scorer
    b = backend()
    r = await Solver(b, pdr, KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    markers = [n for n, a in g.nodes(data=True) if a.get("subrun") == "beam_search"]
    assert len(markers) == 2
    drafts = [n for n, a in g.nodes(data=True) if a.get("round") == 1]
    assert len(drafts) == 2 and all(any(m in nx.ancestors(g, d) for m in markers) for d in drafts)
    searched = {r.trace.graph.nodes[d]["step"] for d in drafts}
    assert r.metrics["rounds"] == 2 and all("boxed{7}" in t for t in searched)


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


@pytest.mark.parametrize("name,config", [("a_star", {"k": 2}), ("mcts", {"k": 2, "simulations": 6}), ("beam_search", {"n": 4, "width": 2})])
async def test_searches_run_as_sub_runs_as_they_do_at_the_top(name, config):
    """A sub-run's root is a step-less node: no search may take it for a finished trajectory."""
    top = await Solver(backend(), make_strategy(name, **config), KeywordScorer()).solve(PROBLEM)
    voted = await Solver(backend(), make_strategy("vote", k=1, strategy={"name": name, "config": config}), KeywordScorer()).solve(PROBLEM)
    assert top.answer == "7" and voted.answer == "7"
    assert len(voted.trace.graph) == len(top.trace.graph) + 1  # the same search, plus the marker
