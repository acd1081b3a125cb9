"""MCTS on the scripted backend (selection, virtual loss, budgets) and on the real engine."""

from __future__ import annotations

import pytest

from ponder.backends.scripted import ScriptCall, ScriptedBackend
from ponder.records.problem import Problem
from ponder.records.trace import Node
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.strategies.mcts import Vertex, pick
from ponder.verifiers.arithmetic import ArithmeticScorer

from ..scripts import KeywordScorer

PROBLEM = Problem(id="m", question="What is 3 + 4?", answer="7")


def branches(call: ScriptCall) -> str:
    """The first step is 'good' or 'bad' by seed; every later step repeats its kind; after three
    steps the good branch answers 7 and the bad one 9."""
    gen = call.generated
    depth = gen.count("\n\n")
    kind = gen.split()[0] if depth else ("good" if (call.seed or 0) % 2 == 0 else "bad")
    if depth >= 3:
        return f"So the answer is \\boxed{{{7 if kind == 'good' else 9}}}."
    return f"{kind} step {depth} seed {call.seed}.\n\n"


def solve(config: dict, script=branches, delay: float = 0.0, scorer=None):
    return Solver(ScriptedBackend(script, token_delay_s=delay), make_strategy("mcts", **config), scorer or KeywordScorer(), seed=3).solve(PROBLEM)


def expansions(r) -> dict[int, int]:
    """request id -> the node its children continue (one request per expansion)."""
    g = r.trace.graph
    out: dict[int, int] = {}
    for n, a in g.nodes(data=True):
        if n and not a.get("rollout") and not a.get("completion"):
            parent = next(iter(g.predecessors(n)))
            assert out.setdefault(a["request"], parent) == parent
    return out


async def test_visits_concentrate_on_the_high_value_branch():
    r = await solve(dict(simulations=16, k=4, parallel=1, prior="uniform"))
    g = r.trace.graph
    first = list(g.successors(0))
    good = sum(g.nodes[n]["visits"] for n in first if g.nodes[n]["step"].startswith("good"))
    bad = sum(g.nodes[n]["visits"] for n in first if g.nodes[n]["step"].startswith("bad"))
    assert good >= 4 * bad > 0, (good, bad)
    assert r.answer == "7" and r.metrics["simulations"] == 16
    chosen = r.trace.node(r.candidates[[c.answer for c in r.candidates].index("7")].node)
    assert r.trace.node(next(c.node for c in r.candidates if c.text == r.text)).finish == "eos"
    assert all(s.startswith("good") for s in r.trace.steps(chosen)[:3])
    # the most-visited path: each step of the answer is the most-visited child of its parent
    node = r.trace.node(next(c.node for c in r.candidates if c.text == r.text))
    for step in r.trace.path(node)[:-1]:
        siblings = list(g.successors(step.parent))
        assert g.nodes[step.id]["visits"] == max(g.nodes[s]["visits"] for s in siblings)


def test_virtual_loss_turns_selection_away_from_a_path_in_flight():
    def vertex(nid: int, visits: int, total: float, virtual: int = 0) -> Vertex:
        return Vertex(Node(id=nid, parent=0, tokens=(), step="", depth=1, finish=None), prior=0.5, visits=visits, total=total, virtual=virtual)

    a, b = vertex(1, 2, 1.8), vertex(2, 1, 0.5)
    parent = vertex(0, 3, 2.3)
    assert pick(parent, [a, b], 0.1, "puct", 1.0) is a
    a.virtual = parent.virtual = 2  # two simulations in flight below a: counted as losses
    assert pick(parent, [a, b], 0.1, "puct", 1.0) is b
    assert pick(parent, [a, b], 0.1, "puct", 0.0) is a  # virtual_loss 0: no effect


async def test_parallel_simulations_expand_different_leaves_at_once():
    r = await solve(dict(simulations=12, k=4, parallel=4, prior="uniform"), delay=0.001)
    parents = list(expansions(r).values())
    assert len(parents) == len(set(parents)) == 12  # no leaf expanded twice
    assert r.metrics["peak_inflight"] == 4
    g = r.trace.graph
    # right after the root, the four root children are expanded together, the best one too
    assert {g.nodes[n]["expanded"] for n in g.successors(0)} == {1, 2, 3, 4}
    # four requests were running at the same moment
    spans = {a["request"]: (a["t_start"], a["t_end"]) for n, a in g.nodes(data=True) if n}
    peak = max(sum(s <= t < e for s, e in spans.values()) for t, _ in spans.values())
    assert peak == 4


async def test_virtual_loss_sends_concurrent_simulations_into_different_subtrees():
    even = lambda c: f"good step {c.generated.count(chr(10) * 2)}.\n\n"  # noqa: E731  every step scores the same
    r = await solve(dict(simulations=5, k=2, parallel=2, prior="uniform"), script=even, delay=0.001)
    g = r.trace.graph
    launched = {a["expanded"]: n for n, a in g.nodes(data=True) if "expanded" in a}
    a, b = list(g.successors(0))
    assert {launched[1], launched[2]} == {a, b}
    # the next two run together: without the virtual loss on the first one's path, the tie
    # between the two subtrees would send both into the same one
    assert {next(iter(g.predecessors(launched[3]))), next(iter(g.predecessors(launched[4])))} == {a, b}


async def test_parallel_search_is_faster_than_one_at_a_time():
    one = await solve(dict(simulations=12, k=4, parallel=1, prior="uniform"), delay=0.002)
    four = await solve(dict(simulations=12, k=4, parallel=4, prior="uniform"), delay=0.002)
    assert four.ledger.wall_s < 0.6 * one.ledger.wall_s


@pytest.mark.parametrize("parallel", [1, 4])
async def test_budgets_hold_with_simulations_in_flight(parallel):
    r = await solve(dict(simulations=5, k=4, parallel=parallel))
    assert len(expansions(r)) == 5 == r.metrics["simulations"]
    r = await solve(dict(k=4, parallel=parallel, max_verifier_calls=10))
    assert r.ledger.verifier_calls == 8  # two expansions of four; a third would overshoot
    r = await solve(dict(k=4, parallel=parallel, max_tokens=300))
    assert 200 < r.ledger.generated_tokens <= 300


async def test_fallback_completes_within_the_token_budget():
    r = await solve(dict(simulations=2, k=2, parallel=2, max_tokens=130, final_tokens=200, prior="uniform"))
    assert r.metrics["terminals"] == 0 and r.metrics["fallback"] == 1
    g = r.trace.graph
    (done,) = [n for n, a in g.nodes(data=True) if a.get("completion")]
    assert g.nodes[done]["finish"] == "length"  # cut by the budget, not by its own cap of 200
    assert r.ledger.generated_tokens == 130 and r.text.startswith("good")


async def test_rollouts_value_children_and_become_candidates():
    r = await solve(dict(simulations=3, k=2, parallel=1, rollout=True, prior="uniform"))
    g = r.trace.graph
    rollouts = [n for n, a in g.nodes(data=True) if a.get("rollout")]
    assert rollouts and all(g.nodes[n]["finish"] == "eos" for n in rollouts)
    for n in rollouts:  # a rollout's score is its child's value
        (child,) = g.predecessors(n)
        assert g.nodes[child]["score"] == g.nodes[n]["score"]
    assert {c.node for c in r.candidates} >= set(rollouts)
    assert r.answer == "7"


async def test_answer_modes():
    script = lambda c: "good \\boxed{7}" if c.seed % 3 else "bad \\boxed{9}"  # noqa: E731
    for how in ("visits", "value", "vote"):
        r = await solve(dict(simulations=1, k=6, answer=how, prior="uniform"), script=script)
        assert r.answer == "7" and len(r.candidates) == 6, how


async def test_mcts_on_the_engine_continues_cached_prefixes_within_budget(engine):
    # steps are lines here, so the small model's answers have several
    config = dict(simulations=6, k=2, parallel=3, step_tokens=48, final_tokens=64, max_depth=3, max_tokens=500, max_verifier_calls=10)
    s = Solver(engine, make_strategy("mcts", **config), ArithmeticScorer(), seed=2, delimiter="\n")
    r = await s.solve(Problem(id="add", question="What is 12 + 7?", answer="19"))
    assert r.ledger.generated_tokens <= 500 and r.ledger.verifier_calls <= 10
    assert r.metrics["simulations"] >= 2 and r.text
    g = r.trace.graph
    deeper = [(req, p) for req, p in expansions(r).items() if p]
    assert deeper
    for req, p in deeper:
        parent = r.trace.node(p)
        child = next(n for n, a in g.nodes(data=True) if a.get("request") == req)
        assert r.trace.node(child).ids[: len(parent.ids)] == parent.ids
        assert g.nodes[child]["cached_tokens"] == (len(parent.ids) - 1) // 32 * 32  # the exact ids hit the cache
    priors = [a["prior"] for _, a in g.nodes(data=True) if "prior" in a]
    assert priors and all(0 < p <= 1 for p in priors)
