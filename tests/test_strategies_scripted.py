"""Each strategy's behaviour pinned on the scripted backend (fast, deterministic)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.runtime.budget import Budget
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import STRATEGIES, make_strategy

from .scripts import KeywordScorer, backend

PROBLEM = Problem(id="p1", question="What is 3 + 4?", answer="7")


def depth_nodes(result, depth):
    g = result.trace.graph
    return [n for n, a in g.nodes(data=True) if a["depth"] == depth and not a.get("lookahead")]


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


async def test_beam_search_keeps_n_over_m_and_expands_m():
    b, scorer = backend(), KeywordScorer()
    r = await Solver(b, make_strategy("beam_search", n=8, width=4, dedup=False), scorer).solve(PROBLEM)
    assert len(depth_nodes(r, 1)) == 8  # first step: N samples from the prompt
    for depth in (2, 3):
        nodes = depth_nodes(r, depth)
        parents = Counter(r.trace.graph.nodes[next(iter(r.trace.graph.predecessors(n)))]["step"] for n in nodes)
        assert len(nodes) == 8 and len(parents) == 2  # N/M = 2 kept, each expanded M = 4 times
        assert all(count == 4 for count in parents.values())
        assert all("good" in step for step in parents)  # the kept beams were the best scored
    assert r.answer == "7" and r.correct
    assert all(c.finish == "eos" for c in r.candidates)


async def test_beam_search_dedup_and_lookahead():
    r = await Solver(backend(), make_strategy("beam_search", n=4, width=2, lookahead=1), KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    assert any(a.get("lookahead") for _, a in g.nodes(data=True))
    texts = [r.trace.node(n).text for n in depth_nodes(r, 2)]
    assert len(texts) == len(set(texts))  # duplicates were dropped
    assert r.answer == "7"


async def test_dvts_subtrees_never_compete_and_all_n_leaves_vote():
    b, scorer = backend(), KeywordScorer()
    r = await Solver(b, make_strategy("dvts", n=8, width=4), scorer).solve(PROBLEM)
    g = r.trace.graph
    for depth in (1, 2, 3):
        nodes = depth_nodes(r, depth)
        assert len(nodes) == 8  # each subtree expands its own node M times
        parents = {next(iter(g.predecessors(n))) for n in nodes}
        # one parent per subtree (both start at the prompt): no subtree took another's beam
        assert len(parents) == (1 if depth == 1 else 2)
        assert {g.nodes[n]["subtree"] for n in nodes} == {0, 1}
    # N leaves: the M last-step siblings of each of the N/M subtrees
    assert len(r.candidates) == 8 and len({c.node for c in r.candidates}) == 8
    by_parent = Counter(next(iter(g.predecessors(c.node))) for c in r.candidates)
    assert sorted(by_parent.values()) == [4, 4]
    assert all(g.nodes[c.node]["depth"] == 4 for c in r.candidates)
    assert r.answer == "7"


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


async def test_particle_filtering_resamples_towards_high_weights():
    r = await Solver(backend(), make_strategy("particle_filtering", particles=8, weight_temperature=0.05), KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    second = depth_nodes(r, 2)
    assert len(second) == 8
    for n in second:
        parent = next(iter(g.predecessors(n)))
        assert "good" in g.nodes[parent]["step"]  # bad particles were resampled away
    first = [g.nodes[n]["weight"] for n in depth_nodes(r, 1)]
    assert len(first) == 8 and sum(first) == pytest.approx(1.0)
    assert r.metrics["resamples"] == 3 and r.answer == "7"


async def test_particle_filtering_log_weight_is_the_logit_of_the_reward():
    r = await Solver(backend(), make_strategy("particle_filtering", particles=8), KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    weights = {"good" in g.nodes[n]["step"]: g.nodes[n]["weight"] for n in depth_nodes(r, 1)}
    # logit(0.9) - logit(0.1) = ln 81: a softmax over the raw rewards would give e^0.8 = 2.2
    assert weights[True] / weights[False] == pytest.approx(81.0, rel=1e-9)


def early_finisher(call):
    depth = call.generated.count("\n\n")
    if depth == 0 and call.index == 0:
        return "Quick: \\boxed{7}"
    return "So \\boxed{9}" if depth >= 3 else f"slow step {depth}.\n\n"


class SureScorer:
    async def score(self, problem, steps):
        return [0.9999 if "{7}" in s else 0.0001 for s in steps]


async def test_particle_filtering_keeps_finished_particles_and_resamples_them():
    b = ScriptedBackend(early_finisher)
    r = await Solver(b, make_strategy("particle_filtering", particles=4), SureScorer()).solve(PROBLEM)
    # the finished particle (weight ~1 - 1e-8) is drawn four times: every copy is finished, none is continued
    assert r.metrics["finished_resampled"] == 4 and r.metrics["resamples"] == 1
    assert r.ledger.requests == 4 and not depth_nodes(r, 2)  # the first step's four samples, nothing after
    assert [c.answer for c in r.candidates] == ["7"] and r.answer == "7"


async def test_particle_gibbs_keeps_the_last_iterations_best_as_reference():
    r = await Solver(backend(), make_strategy("particle_filtering", particles=4, iterations=2), KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    first = [n for n in depth_nodes(r, 1) if g.nodes[n]["iteration"] == 0]
    second = [n for n in depth_nodes(r, 1) if g.nodes[n]["iteration"] == 1]
    assert len(first) == 4 and len(second) == 3  # the reference is not sampled again: P - 1 new particles
    assert len({g.nodes[n]["request"] for n in second}) == 1
    # the reference (the best iteration-0 trajectory) always survives into the last population
    (reference,) = [c for c in r.candidates if g.nodes[c.node]["iteration"] == 0]
    assert reference.score == max(g.nodes[n]["score"] for n, a in g.nodes(data=True) if a.get("iteration") == 0 and a["finish"] == "eos")
    assert r.metrics["iterations"] == 2 and r.answer == "7"


async def test_budget_stops_cleanly_and_still_answers():
    b = backend()
    r = await Solver(b, make_strategy("beam_search", n=4, width=2, max_steps=40), KeywordScorer(), budget=Budget(generated_tokens=60)).solve(PROBLEM)
    assert r.ledger.generated_tokens <= 60  # a hard limit, in-flight requests included
    assert r.candidates and r.text


def test_registry_and_config_errors():
    assert {"best_of_n", "beam_search", "dvts", "first_finish", "particle_filtering"} <= set(STRATEGIES)
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        make_strategy("nope")
    with pytest.raises(ValueError, match="field 'n'"):
        make_strategy("best_of_n", n=0)
    with pytest.raises(ValueError, match="multiple of width"):
        make_strategy("beam_search", n=6, width=4)
    with pytest.raises(ValueError, match="needs a step scorer"):
        Solver(backend(), make_strategy("beam_search"))


async def test_global_budget_stops_new_problems_and_trace_exports(tmp_path):
    b = backend()
    solver = Solver(b, make_strategy("best_of_n", n=2), global_budget=Budget(generated_tokens=100))
    items = [Problem(id=f"p{i}", question=f"q{i}", answer="7") for i in range(10)]
    handed: list[str] = []
    results = await solver.solve_many(items, concurrency=1, on_result=lambda p, r: handed.append(p.id))
    # every problem has its Result, in order, and each went to on_result
    assert [r.problem_id for r in results] == handed == [p.id for p in items]
    started = [r for r in results if r.error is None]
    skipped = [r for r in results if r.error is not None]
    assert started and skipped and results.index(skipped[0]) == len(started)  # once spent, no problem starts
    assert all(r.error == "not started: the run's global budget is spent (generated_tokens 100)" for r in skipped)
    assert solver.ledger.generated_tokens >= 100
    results[0].trace.save(tmp_path / "t.json")
    import json

    data = json.loads((tmp_path / "t.json").read_text())
    assert len(data["nodes"]) == 3 and len(data["edges"]) == 2


async def test_no_two_samples_of_a_problem_share_a_seed():
    # DVTS sends n/width root requests of `width` samples each; sample i of a request is seeded
    # seed + i, so consecutive requests must start `width` seeds apart
    b = backend()
    await Solver(b, make_strategy("dvts", n=16, width=4, max_steps=2), KeywordScorer()).solve(PROBLEM)
    seeds = [(c.prompt, c.seed) for c in b.calls]
    assert len(seeds) >= 16 and len(set(seeds)) == len(seeds)


async def test_particle_filtering_resamples_from_each_problems_own_seed_stream():
    # two problems with the same question sample the same steps; only the resampling draws differ
    def expanded(r):  # which nodes were continued at each depth: the resampling's choices
        g = r.trace.graph
        return sorted((g.nodes[p]["depth"], p) for p in g.nodes if p != 0 and list(g.successors(p)))

    runs = [await Solver(backend(), make_strategy("particle_filtering", particles=8, weight_temperature=4.0), KeywordScorer(), seed=3)
            .solve(Problem(id=pid, question="What is 3 + 4?", answer="7")) for pid in ("a", "b", "a")]
    assert expanded(runs[0]) == expanded(runs[2])  # a problem's draws repeat
    assert expanded(runs[0]) != expanded(runs[1])
