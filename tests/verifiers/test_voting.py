"""math-verify off the event loop: a slow comparison is cut at its time limit from any thread,
a vote computed through the async forms leaves the loop running, and a vote compares each
pair of answers once."""

from __future__ import annotations

import asyncio
import functools
import threading
import time

import pytest

from ponder.records.result import Candidate
from ponder.verifiers.answer import equivalent, equivalent_async
from ponder.verifiers.symbolic import SymbolicPool, shared_pool
from ponder.verifiers.voting import clusters, clusters_async, select, select_async

# sympy expands both sides: about 14 s on this machine when nothing stops it
SLOW = ("(x+y+1)^{60} - (x+y)^{60}", "(x+y+2)^{60}")


def warm() -> None:
    assert equivalent("x^2+2x+1", "(x+1)^2")  # starts a worker outside the timed part


@pytest.fixture
def vote_limit(monkeypatch):
    """Votes compare answers with a 2.5 s limit here, not the default 5 s: the slow pair still
    runs into it, and each test waits (with a worker spinning) half as long."""
    from ponder.verifiers import voting

    monkeypatch.setattr(voting, "equivalent_async", functools.partial(equivalent_async, timeout_s=2.5))


def test_a_slow_comparison_is_cut_at_the_limit_from_a_worker_thread():
    warm()
    seen: dict = {}

    def compare() -> None:
        t = time.monotonic()
        seen["same"] = equivalent(*SLOW, timeout_s=1.0)
        seen["took"] = time.monotonic() - t

    worker = threading.Thread(target=compare)
    worker.start()
    worker.join(60)
    assert seen["same"] is False
    assert 0.9 < seen["took"] < 4.0
    assert equivalent("\\frac{2}{4}x", "x/2")  # the pool still answers after a worker was killed


async def test_the_loop_keeps_running_while_a_vote_is_computed(vote_limit):
    warm()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    start_ticks, t = ticks, time.monotonic()
    cands = [Candidate("", SLOW[0], score=0.9), Candidate("", SLOW[1], score=0.1), Candidate("", SLOW[1], score=0.2)]
    best = await select_async(cands, "majority")
    took, moved = time.monotonic() - t, ticks - start_ticks
    task.cancel()
    assert best.answer == SLOW[1]  # the slow pair is "not shown equal" at the limit: two votes win
    assert took > 2.0  # the vote really waited on math-verify...
    assert moved > 0.3 * took / 0.01  # ...and the loop kept ticking meanwhile


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_a_vote_compares_each_pair_once(asynchronous):
    warm()
    cands = [Candidate("", "x^2+2x+1")] + [Candidate("", "(x+1)^2") for _ in range(8)] + [Candidate("", "7")]
    pool = shared_pool()
    before = pool.calls
    groups = await clusters_async(cands) if asynchronous else clusters(cands)
    assert groups == [list(range(9)), [9]]
    # one for the eight "(x+1)^2" against "x^2+2x+1", one for "7" against it; 9 without the memo
    assert pool.calls - before == 2


async def test_async_forms_agree_with_the_sync_ones():
    pairs = [("1,000", "1000"), ("0.5", "\\frac{1}{2}"), ("2\\sqrt{2}", "\\sqrt{8}"), ("19", "9"), ("B", "C"), ("", "5")]
    assert [await equivalent_async(a, b) for a, b in pairs] == [equivalent(a, b) for a, b in pairs]
    cands = [Candidate("", a, score=s) for a, s in [("1,000", 0.2), ("1000", 0.3), ("999", 0.9), ("\\frac{1}{2}", 0.1), ("0.5", 0.1)]]
    for how in ("first", "best", "majority", "weighted"):
        assert (await select_async(cands, how)) == select(cands, how)
    with pytest.raises(ValueError, match="selection"):
        await select_async(cands, "nope")


def test_a_worker_that_died_is_replaced():
    pool = SymbolicPool(workers=1)
    try:
        assert pool.equivalent("x^2+2x+1", "(x+1)^2", 30)
        for worker in pool._idle:
            worker.process.kill()
            worker.process.wait()
        assert pool.equivalent("x^2+2x+1", "(x+1)^2", 30)
    finally:
        pool.close()


@pytest.mark.parametrize("name", ["best_of_n", "beam_search"])
async def test_a_strategy_voting_on_slow_answers_never_stalls_other_problems(name, vote_limit):
    from ponder.backends.scripted import ScriptedBackend
    from ponder.records.problem import Problem
    from ponder.runtime.solver import Solver
    from ponder.strategies.base import make_strategy

    from ..scripts import KeywordScorer

    warm()
    answers = [f"good: \\boxed{{{SLOW[0]}}}", f"good: \\boxed{{{SLOW[1]}}}"]
    b = ScriptedBackend(lambda c: answers[(c.seed or 0) % 2])
    config = {"n": 4} if name == "best_of_n" else {"n": 4, "width": 2, "max_steps": 1}
    solver = Solver(b, make_strategy(name, selection="majority", **config), KeywordScorer())
    gaps, last = [], time.monotonic()

    async def ticker() -> None:
        nonlocal last
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    t = time.monotonic()
    await solver.solve(Problem(id="slow", question="Expand it."))
    took = time.monotonic() - t
    task.cancel()
    assert took > 1.0  # the vote waited on math-verify...
    assert max(gaps) < 0.5  # ...while the loop (every other problem) kept running
