"""A*: pops in f order, backtracks, keeps the rest in reserve, and stays within its budgets."""

from __future__ import annotations

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.verifiers.arithmetic import ArithmeticScorer

from ..scripts import KeywordScorer, backend
from ..traces import attrs, nodes

PROBLEM = Problem(id="p2", question="What is 3 + 4?", answer="7")


async def test_a_star_pops_in_f_order_and_finds_a_goal():
    r = await Solver(backend(), make_strategy("a_star", k=3, push="all"), KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    popped = sorted((a["popped"], n) for n, a in g.nodes(data=True) if "popped" in a)
    for i, n in popped:
        f = g.nodes[n].get("f", 0.0)
        # every node on the open list at pop i (pushed before it, popped later or never) has f >= f_i
        waiting = [a["f"] for m, a in g.nodes(data=True) if a.get("pushed", 99) <= i and a.get("popped", 10**9) > i and m != n]
        assert all(w >= f - 1e-9 for w in waiting), (i, f, waiting)
    assert r.answer == "7" and "fallback" not in r.metrics
    assert r.trace.node(r.candidates[0].node).finish == "eos"


async def test_a_star_respects_its_verifier_budget_and_falls_back():
    r = await Solver(backend(), make_strategy("a_star", k=2, max_verifier_calls=4), KeywordScorer()).solve(PROBLEM)
    # pop the prompt (2 PRM calls), pop its best child (2 more): the budget is spent before a goal
    assert r.ledger.verifier_calls == 4 and r.metrics["pops"] == 2 and r.metrics["fallback"] == 1
    g = r.trace.graph
    ((done, _),) = nodes(r, completion=True)
    frontier = [n for n, a in g.nodes(data=True) if "pushed" in a and "popped" not in a]
    start = next(iter(g.predecessors(done)))
    assert start == max(frontier, key=lambda n: (g.nodes[n]["score"], -n))  # the best frontier node, completed greedily
    assert g.nodes[done]["finish"] == "eos" and r.candidates[0].node == done


async def test_a_star_push_best_keeps_the_rest_in_reserve():
    r = await Solver(backend(), make_strategy("a_star", k=4, push="best"), KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    popped = [a for _, a in g.nodes(data=True) if "popped" in a]
    assert len(popped) == 5 and all(a["open"] == 1 for a in popped)  # one entry on the open list at every pop
    expanded = len(popped) - 1  # the last pop was the goal
    assert len(nodes(r, reserve=True)) == expanded * 3  # the k - 1 others of each expansion wait in reserve
    for n, a in g.nodes(data=True):
        if "popped" in a and n != 0:
            assert "good" in a["step"] or a["finish"] == "eos"  # only best children were explored


def lure(call):
    """A first step that looks best ('lure') but leads only to weak steps ('trap'), and steady steps
    that score less at first and stay the same."""
    g = call.generated
    depth = g.count("\n\n")
    if depth >= 3:
        return "So the answer is \\boxed{9}." if "trap" in g else "So the answer is \\boxed{7}."
    if depth == 0:
        return "lure step.\n\n" if call.index == 0 else f"steady start {call.index}.\n\n"
    return f"{'trap' if 'lure' in g else 'steady'} step {depth}.\n\n"


class LureScorer:
    async def score(self, problem, steps):
        return [0.9 if "lure" in s else 0.1 if "trap" in s else 0.6 if "steady" in s else 0.9 for s in steps]


async def test_a_star_backtracks_when_a_branch_scores_fall():
    r = await Solver(ScriptedBackend(lure), make_strategy("a_star", k=3), LureScorer()).solve(PROBLEM)
    g = r.trace.graph
    order = [n for _, n in sorted((a["popped"], n) for n, a in g.nodes(data=True) if "popped" in a)]
    assert "lure" in g.nodes[order[1]]["step"]  # f = 0.2: the lure is expanded first
    parents = [next(iter(g.predecessors(n))) for n in order[1:]]
    jumps = [n for n, p, before in zip(order[1:], parents, order) if p != before]
    assert jumps and "steady" in g.nodes[jumps[0]]["step"]  # its trap children (f = 1.9) wait; A* pops a steady sibling
    assert r.answer == "7" and "fallback" not in r.metrics
    assert not any("trap" in g.nodes[n]["step"] for n in order)  # the weak branch is never expanded


def long_first_step(call):
    """A first step longer than step_tokens (cut by length), then short steps and an answer."""
    g = call.generated
    if not g:
        return "good start that runs on far past the step cap " * 3 + "\n\n"
    if g.count("\n\n") >= 2:
        return "So the answer is \\boxed{7}."
    return "good step.\n\n"


async def test_a_star_continues_past_a_step_cut_by_length():
    r = await Solver(ScriptedBackend(long_first_step), make_strategy("a_star", k=1, step_tokens=40, temperature=0.0), KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    cut = [n for n, a in g.nodes(data=True) if a.get("finish") == "length" and a.get("depth") == 1]
    assert cut and "popped" in g.nodes[cut[0]] and list(g.successors(cut[0]))  # popped and continued, not a goal
    assert "fallback" not in r.metrics and r.answer == "7" and r.trace.node(r.candidates[0].node).finish == "eos"


async def test_a_star_budgets_are_never_exceeded():
    b = backend()
    r = await Solver(b, make_strategy("a_star", k=3, max_verifier_calls=4, max_tokens=20), KeywordScorer()).solve(PROBLEM)
    # one pop's k children are reserved before they start: the limits hold exactly, not between pops
    assert r.ledger.verifier_calls <= 4 and r.ledger.generated_tokens <= 20
    assert b.stats().usage.generated_tokens <= 20 and r.text


ENGINE_PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")


@pytest.mark.engine
async def test_a_star_searches_within_its_budget(engine):
    s = Solver(engine, make_strategy("a_star", k=3, step_tokens=32, final_tokens=64, max_depth=4, max_verifier_calls=12), ArithmeticScorer(), seed=2)
    r = await s.solve(ENGINE_PROBLEM)
    assert r.candidates and r.text
    assert r.ledger.verifier_calls <= 12  # a scope of the problem's budget: reserved before each request
    popped = [a for _, a in attrs(r, "open")]
    # every scored child goes on the open list: after the first expansion it holds k entries
    assert r.metrics["pops"] >= 2 and max(a["open"] for a in popped) >= 3
