"""A failure stays inside its problem: the first error cancels every sibling of a fan-out (their
engine requests aborted and recorded), and a timeout that is not the wall deadline's is an error."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy

from ..scripts import backend

PROBLEM = Problem(id="f", question="What is 3 + 4?", answer="7")
STEP = dict(step_tokens=60, final_tokens=60)

# every strategy that fans out inside a problem, each scoring as it goes
FANNING = [  # (name, config, the scorer call that fails: one made while siblings are still generating)
    ("dvts", dict(n=8, width=2, **STEP), 2),
    ("beam_search", dict(n=8, width=2, **STEP), 9),
    ("beam_search", dict(n=4, width=2, lookahead=1, **STEP), 2),
    ("particle_filtering", dict(particles=6, **STEP), 7),
    ("early_rejection", dict(n=8, width=2, tau=8, **STEP), 9),
    ("mcts", dict(simulations=12, k=3, parallel=4, **STEP), 5),
    ("vote", dict(strategy={"name": "beam_search", "config": dict(n=4, width=2, **STEP)}, k=3), 2),
]


def uneven(call):
    """Three steps whose lengths differ from sample to sample, then an answer: when one
    sample's step is scored, others are still being generated."""
    depth = call.generated.count("\n\n")
    if depth >= 3:
        return "So the answer is \\boxed{7}."
    kind = "good" if (call.seed or 0) % 2 == 0 else "bad"
    return f"{kind} step {depth}" + " more" * ((call.seed or 0) % 4 * 3) + ".\n\n"


class BreaksOnce:
    """A step scorer whose `at`-th call raises (`error`); the calls before and after it work."""

    def __init__(self, at: int = 4, error: type[BaseException] = RuntimeError) -> None:
        self.at, self.error, self.calls = at, error, 0

    async def score(self, problem, steps):
        self.calls += 1
        mine = self.calls
        await asyncio.sleep(0.001)
        if mine == self.at:
            raise self.error("the scorer broke")
        return [0.9 if "good" in s else 0.1 for s in steps]


def totals(ledger):
    return ledger.engine_requests, ledger.engine_prompt_tokens, ledger.cached_tokens, ledger.engine_generated_tokens


def engine_counted(b):
    s = b.stats()
    return s.requests, s.usage.prompt_tokens, s.usage.cached_tokens, s.usage.generated_tokens


@pytest.mark.parametrize("name,config,at", FANNING, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(FANNING)])
async def test_a_scorer_failing_once_stops_every_sibling(name, config, at):
    b = backend(uneven, delay=0.002)
    (r,) = await Solver(b, make_strategy(name, **config), BreaksOnce(at)).solve_many([PROBLEM])
    assert r.error == "RuntimeError: the scorer broke"
    sent, at_return = len(b.calls), engine_counted(b)
    await asyncio.sleep(0.3)  # long enough for work left running to finish a request or send one
    assert (len(b.calls), engine_counted(b)) == (sent, at_return)
    # the siblings' requests were aborted before the error came back, and recorded as the engine counted them
    assert totals(r.ledger) == at_return


async def test_a_scorer_timeout_is_the_problems_error_not_the_deadline():
    # no wall budget: a TimeoutError from the scorer's own call is a failure, never a cut
    b = backend()
    with pytest.raises(TimeoutError, match="the scorer broke"):
        await Solver(b, make_strategy("beam_search", n=4, width=2, **STEP), BreaksOnce(at=1, error=TimeoutError)).solve(PROBLEM)
    (r,) = await Solver(b, make_strategy("beam_search", n=4, width=2, **STEP), BreaksOnce(at=1, error=TimeoutError)).solve_many([PROBLEM])
    assert r.error == "TimeoutError: the scorer broke" and r.answer == ""


class BreakingStream(ScriptedBackend):
    """A backend whose `at`-th stream fails after a few tokens, the way a dropped connection does."""

    def __init__(self, *args, at: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.at, self.streams = at, 0

    async def stream(self, prompt_ids, sampling):
        self.streams += 1
        mine = self.streams
        async for d in super().stream(prompt_ids, sampling):
            yield d
            if mine == self.at:
                raise RuntimeError("the stream broke")


async def test_a_stream_failing_in_deepconfs_fan_out_stops_the_others():
    b = BreakingStream(lambda call: "thinking " * 30 + "\\boxed{7}", token_delay_s=0.002, at=2)
    search = make_strategy("deepconf", mode="online", n=6, warmup=2, window=8, top_k=2, max_tokens=400)
    (r,) = await Solver(b, search).solve_many([PROBLEM])
    assert r.error == "RuntimeError: the stream broke"
    at_return = engine_counted(b)
    await asyncio.sleep(1.0)  # the other streams would need about 0.6 s to finish
    assert engine_counted(b) == at_return == totals(r.ledger)
