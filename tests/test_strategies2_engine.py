"""Part 2 strategies on the real engine with the embedded model; behaviour read from ledger and trace."""

from __future__ import annotations

from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.verifiers.arithmetic import ArithmeticScorer
from ponder.verifiers.judge import Judge

PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")
LONG = Problem(id="long", question="Explain step by step how to compute 12 + 7, then check your work twice.", answer="19")


def attrs(r, key):
    return [(n, a) for n, a in r.trace.graph.nodes(data=True) if a.get(key)]


async def test_a_star_searches_within_its_budget(engine):
    s = Solver(engine, make_strategy("a_star", k=3, step_tokens=32, final_tokens=64, max_depth=4, max_verifier_calls=12), ArithmeticScorer(), seed=2)
    r = await s.solve(PROBLEM)
    assert r.candidates and r.text
    assert r.ledger.verifier_calls <= 12  # a scope of the problem's budget: reserved before each request
    popped = [a for _, a in attrs(r, "open")]
    # every scored child goes on the open list: after the first expansion it holds k entries
    assert r.metrics["pops"] >= 2 and max(a["open"] for a in popped) >= 3


async def test_early_rejection_continues_n_over_m_from_the_cached_prefix(engine):
    s = Solver(engine, make_strategy("early_rejection", n=8, width=4, tau=8, step_tokens=48, final_tokens=64, max_steps=3), ArithmeticScorer(), seed=3)
    r = await s.solve(PROBLEM)
    g = r.trace.graph
    first = [n for n, a in g.nodes(data=True) if a["depth"] == 1]
    assert len(first) == 8 and all(g.nodes[n]["tokens"] <= 8 for n in first)
    assert len([n for n in first if list(g.successors(n))]) <= 2  # only N/M continued
    assert len([n for n in first if g.nodes[n].get("rejected")]) == 6  # the rest dropped after τ tokens
    for n, a in attrs(r, "continuation"):
        parent = r.trace.node(next(iter(g.predecessors(n))))
        # the continuation sent the partial step's exact ids: every full block came from the cache
        assert a["cached_tokens"] == (len(parent.ids) - 1) // 32 * 32
    assert r.candidates


async def test_pdr_and_sr_answer_with_a_bounded_workspace(engine):
    r = await Solver(engine, make_strategy("pdr", schedule=[2, 2, 1], max_tokens=64, workspace_tokens=64), seed=4).solve(PROBLEM)
    rounds = [a.get("round") for _, a in r.trace.graph.nodes(data=True)]
    assert rounds.count(3) == 1 and rounds.count(2) == 2 and rounds.count(1) == 2
    assert all(a["workspace_tokens"] <= 64 for _, a in attrs(r, "workspace_tokens"))
    assert 0 < r.metrics["B_seq"] < r.metrics["B_tot"] == r.ledger.generated_tokens
    r = await Solver(engine, make_strategy("sr", schedule=[1, 1], max_tokens=64, workspace_tokens=64), seed=4).solve(PROBLEM)
    assert r.text and r.metrics["rounds"] == 2


async def test_trim_steers_from_the_exact_prefix_with_a_real_judge(engine):
    # a quarter of 64 tokens: the explanation asked for is longer, so the underthinking rule cuts it
    s = Solver(engine, make_strategy("trim", max_tokens=64, underthink_ratio=0.25, final_tokens=32), Judge(engine), seed=5)
    r = await s.solve(LONG)
    (streamed,) = [(n, a) for n, a in r.trace.graph.nodes(data=True) if a["depth"] == 1]
    assert r.metrics["trimmed"] == 1 and r.metrics["judge_failures"] == 0
    assert streamed[1]["finish"] == "abort" and r.ledger.aborted_requests == 1
    (steer,) = [n for n, _ in attrs(r, "steer")]
    steer_node, stream_node = r.trace.node(steer), r.trace.node(streamed[0])
    assert steer_node.ids == stream_node.ids + tuple(engine.tokenizer.encode("\n\n**Final Answer**\n"))
    (final,) = r.trace.graph.successors(steer)
    assert r.trace.node(final).ids[: len(steer_node.ids)] == steer_node.ids
    assert r.text


async def test_deepconf_offline_and_online(engine):
    r = await Solver(engine, make_strategy("deepconf", n=4, eta=50, window=16, top_k=5, max_tokens=48), seed=6).solve(PROBLEM)
    confs = [a["confidence"] for _, a in attrs(r, "confidence")]
    assert len(confs) == 4 and all(c > 0 for c in confs) and r.metrics["voters"] == 2
    # DeepConf-low: the threshold is the 90th percentile of the warm-up, so most online traces fall below it
    r = await Solver(engine, make_strategy("deepconf", mode="online", n=6, warmup=3, preset="low", window=8, top_k=5, max_tokens=48), seed=6).solve(PROBLEM)
    online = [a for _, a in r.trace.graph.nodes(data=True) if a.get("warmup") is False]
    assert len(online) == 3 and r.metrics["aborted"] >= 1
    assert r.ledger.aborted_requests == r.metrics["aborted"] == sum(a["finish"] == "abort" for a in online)
    for a in online:
        if a["finish"] == "abort":
            assert a["confidence"] < r.metrics["threshold"] and a["tokens"] < 48
