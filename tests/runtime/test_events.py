"""The runtime's event stream: the same events for every strategy, in order, ending with the Result."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import STRATEGIES, make_strategy

from ..scripts import KeywordScorer, backend

PROBLEM = Problem(id="p1", question="What is 3 + 4?", answer="7")


async def test_beam_search_reports_every_node_score_and_prune_then_the_result():
    events = []
    solver = Solver(backend(), make_strategy("beam_search", n=4, width=2, dedup=False), KeywordScorer())
    result = await solver.solve(PROBLEM, on_event=events.append)
    assert [e.kind for e in events].count("done") == 1 and events[-1].kind == "done"
    assert events[-1].result is result and events[-1].ledger == result.ledger
    graph = result.trace.graph
    added = [e.node for e in events if e.kind == "added"]
    assert sorted(added) == sorted(n for n in graph.nodes if n != 0)  # every node, once
    for e in events:
        if e.kind == "added":
            assert e.parent == next(iter(graph.predecessors(e.node))) and e.step == graph.nodes[e.node]["step"]
    scored = {e.node: e.score for e in events if e.kind == "scored"}
    assert scored == {n: a["score"] for n, a in graph.nodes(data=True) if n != 0 and a["score"] is not None}
    order = {(e.kind, e.node): i for i, e in enumerate(events)}
    assert all(order[("added", n)] < order[("scored", n)] for n in scored)
    kept = {c.node for c in result.candidates}
    pruned = {e.node for e in events if e.kind == "pruned"}
    leaves = {n for n in graph.nodes if n != 0 and graph.out_degree(n) == 0}
    assert pruned == leaves - kept and pruned  # the beams the search dropped
    assert {e.node for e in events if e.kind == "finished"} >= kept
    requests = [e.ledger.requests for e in events]
    assert requests == sorted(requests) and requests[-1] == result.ledger.requests


async def test_an_async_callback_sees_the_same_events_in_order():
    sync_events, async_events = [], []

    async def slow(event):
        await asyncio.sleep(0.001)  # yields, so later events are emitted before this one returns
        async_events.append(event)

    make = lambda: Solver(backend(), make_strategy("beam_search", n=4, width=2), KeywordScorer())  # noqa: E731
    await make().solve(PROBLEM, on_event=sync_events.append)
    await make().solve(PROBLEM, on_event=slow)
    strip = lambda evs: [(e.kind, e.node, e.score) for e in evs]  # noqa: E731
    assert strip(async_events) == strip(sync_events) and len(sync_events) > 10


async def test_events_iterates_to_done_and_a_broken_loop_cancels_the_solve():
    solver = Solver(backend(), make_strategy("beam_search", n=4, width=2), KeywordScorer())
    kinds = [e.kind async for e in solver.events(PROBLEM)]
    assert kinds[-1] == "done" and "added" in kinds and "scored" in kinds

    slow = backend(delay=0.01)
    solver = Solver(slow, make_strategy("beam_search", n=4, width=2), KeywordScorer())
    async for event in solver.events(PROBLEM):
        assert event.kind == "added"
        break
    calls = len(slow.calls)
    await asyncio.sleep(0.5)  # a running search would have sent its next step by now
    assert len(slow.calls) == calls and calls == 4


async def test_first_finish_losers_are_reported_aborted():
    b = ScriptedBackend(lambda c: "short \\boxed{7}" if c.seed % 4 == 0 else "a much longer answer " * 3, token_delay_s=0.002)
    events = []
    result = await Solver(b, make_strategy("first_finish", n=4)).solve(PROBLEM, on_event=events.append)
    aborted = [e.node for e in events if e.kind == "aborted"]
    finished = [e.node for e in events if e.kind == "finished"]
    assert len(aborted) == 3 and result.candidates[0].node in finished


async def test_early_rejection_reports_rejected_partials_as_they_are_dropped():
    events = []
    solver = Solver(backend(), make_strategy("early_rejection", n=4, width=2, tau=4, step_tokens=64), KeywordScorer())
    result = await solver.solve(PROBLEM, on_event=events.append)
    rejected = {n for n, a in result.trace.graph.nodes(data=True) if a.get("rejected")}
    pruned = [e for e in events if e.kind == "pruned"]
    assert rejected and rejected <= {e.node for e in pruned}
    done_at = [e.kind for e in events].index("done")
    assert all(events.index(e) < done_at for e in pruned)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
async def test_every_strategy_reports_through_the_runtime(name):
    events = []
    result = await Solver(backend(), make_strategy(name), KeywordScorer()).solve(PROBLEM, on_event=events.append)
    assert events[-1].kind == "done" and events[-1].result is result
    assert {e.node for e in events if e.kind == "added"} == set(result.trace.graph.nodes) - {0}
