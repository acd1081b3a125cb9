"""Strategies made of strategies: a sub-run shares the problem's ledger, budgets, trace and seeds,
and a search runs as a sub-run as it does at the top."""

from __future__ import annotations

from typing import ClassVar

import networkx as nx
import pytest

from ponder.records.problem import Problem
from ponder.runtime.budget import Budget
from ponder.runtime.context import Context
from ponder.runtime.seeds import Seeds
from ponder.runtime.solver import Solver
from ponder.strategies.base import Configured, StrategyConfig, make_strategy

from ..scripts import KeywordScorer, backend

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


@pytest.mark.parametrize("name,config", [("a_star", {"k": 2}), ("mcts", {"k": 2, "simulations": 6}), ("beam_search", {"n": 4, "width": 2})])
async def test_searches_run_as_sub_runs_as_they_do_at_the_top(name, config):
    """A sub-run's root is a step-less node: no search may take it for a finished trajectory."""
    top = await Solver(backend(), make_strategy(name, **config), KeywordScorer()).solve(PROBLEM)
    voted = await Solver(backend(), make_strategy("vote", k=1, strategy={"name": name, "config": config}), KeywordScorer()).solve(PROBLEM)
    assert top.answer == "7" and voted.answer == "7"
    assert len(voted.trace.graph) == len(top.trace.graph) + 1  # the same search, plus the marker
