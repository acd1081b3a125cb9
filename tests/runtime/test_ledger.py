"""The ledger counts every engine request made for a problem, the verifier's too, exactly as the engine reported it."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.budget import Budget
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.verifiers.arithmetic import ArithmeticScorer
from ponder.verifiers.judge import Judge
from ponder.verifiers.logprob import LogprobPRM, LogprobPRMConfig

from ..engine_runs import vllm_counters
from ..scripts import stepwise

PROBLEMS = [Problem(id=f"p{i}", question=f"What is {i} + 7?", answer=str(i + 7)) for i in range(4)]


def engine_totals(results):
    return (
        sum(r.ledger.engine_requests for r in results),
        sum(r.ledger.engine_prompt_tokens for r in results),
        sum(r.ledger.cached_tokens + r.ledger.verifier_cached_tokens for r in results),
        sum(r.ledger.engine_generated_tokens for r in results),
    )


def backend_totals(b):
    s = b.stats()
    return s.requests, s.usage.prompt_tokens, s.usage.cached_tokens, s.usage.generated_tokens


class RecordingLogprobs:
    """The scripted engine's logprob function, remembering the prefix each read was made after."""

    def __init__(self) -> None:
        self.prefixes: list[str] = []

    def __call__(self, prefix, token):
        self.prefixes.append("".join(chr(i) for i in prefix))
        return -1.0 if token == ord("+") else -2.0


async def test_math_shepherd_reads_at_the_step_tag_token():
    reads = RecordingLogprobs()
    prm = LogprobPRM(ScriptedBackend(["x"], logprob=reads))
    await prm.score(PROBLEMS[0], ["Add 7.", "So 7. "])
    assert reads.prefixes[0::2] == ["What is 0 + 7?\nAdd 7. ки", "What is 0 + 7?\nAdd 7. ки\nSo 7. ки"]
    with pytest.raises(ValueError, match="step_tag must end with the tag token"):
        LogprobPRMConfig(step_tag=" ки\n")


@pytest.mark.parametrize("scorer", ["logprob", "judge"])
async def test_verifier_requests_on_the_policy_engine_are_in_each_problems_ledger(scorer):
    b = ScriptedBackend(stepwise, token_delay_s=0.0005)
    prm = LogprobPRM(b) if scorer == "logprob" else Judge(b)
    sent: dict[str, int] = {}
    original = b.next_token_logprobs

    async def counted(ids, candidates):  # the prompt tokens each problem's verifier really sent
        text = b.tokenizer.decode(ids)
        pid = next(p.id for p in PROBLEMS if p.question in text)
        sent[pid] = sent.get(pid, 0) + len(ids)
        return await original(ids, candidates)

    b.next_token_logprobs = counted
    solver = Solver(b, make_strategy("beam_search", n=4, width=2), prm)
    results = await solver.solve_many(PROBLEMS, concurrency=4)
    assert engine_totals(results) == backend_totals(b)
    assert {r.problem_id: r.ledger.verifier_tokens for r in results} == sent
    assert all(r.ledger.verifier_requests > 0 and r.ledger.verifier_calls > 0 for r in results)


async def test_a_generate_cancelled_at_the_deadline_is_recorded():
    b = ScriptedBackend(["a long answer " * 10], token_delay_s=0.01)  # 1.4 s to answer
    r = await Solver(b, make_strategy("best_of_n", n=2), budget=Budget(wall_s=0.2)).solve(PROBLEMS[0])
    prompt = len(b.calls[0].prompt)
    # the two samples are two engine requests, both cut, each having generated ~20 tokens in 0.2 s
    assert (r.ledger.requests, r.ledger.aborted_requests, r.ledger.prompt_tokens) == (2, 2, 2 * prompt)
    assert [c.finish for c in r.candidates] == ["abort", "abort"]
    # the tokens generated before the cut are spent: counted, and counted as aborted
    assert 2 * 10 <= r.ledger.generated_tokens == r.ledger.aborted_tokens < 2 * 140
    assert (r.ledger.requests, r.ledger.prompt_tokens, r.ledger.cached_tokens, r.ledger.generated_tokens) == backend_totals(b)


@pytest.mark.engine
@pytest.mark.parametrize("samples", [1, 2])  # samples per request: DVTS with width 1, beam search with width 2
@pytest.mark.parametrize("scorer", ["logprob", "judge"])
async def test_the_ledgers_add_up_to_the_engines_own_counters(engine, scorer, samples):
    prm = LogprobPRM(engine, layout="chat") if scorer == "logprob" else Judge(engine)
    name = "dvts" if samples == 1 else "beam_search"
    search = make_strategy(name, n=2, width=samples, max_steps=3, step_tokens=24, final_tokens=32)
    solver = Solver(engine, search, prm, seed=3)
    await asyncio.sleep(1.0)  # counters are updated from the engine's output loop
    before = vllm_counters()
    results = await solver.solve_many(PROBLEMS[:2], concurrency=2)
    await asyncio.sleep(2.0)
    after = vllm_counters()
    requests, prompt, _, generated = engine_totals(results)
    counted = tuple(a - b for a, b in zip(after, before))
    assert (requests, prompt, generated) == counted, [r.ledger for r in results]
    assert all(r.ledger.verifier_requests > 0 for r in results)


async def test_a_stream_left_early_is_recorded_as_the_engine_counted_it():
    import contextlib

    from ponder.runtime.context import Context

    b = ScriptedBackend(["a long answer that goes on and on \\boxed{7}"], token_delay_s=0.001)
    ctx = Context(Problem(id="s", question="What is 3 + 4? " * 4), b)
    for _ in range(2):  # the second stream finds the prompt's blocks in the cache
        async with contextlib.aclosing(ctx.stream(ctx.tree.root, ctx.sampling(max_tokens=64))) as stream:
            async for d in stream:
                break
    assert ctx.ledger.aborted_requests == 2 and ctx.ledger.cached_tokens > 0
    assert (ctx.ledger.requests, ctx.ledger.prompt_tokens, ctx.ledger.cached_tokens, ctx.ledger.generated_tokens) == backend_totals(b)


@pytest.mark.engine
async def test_requests_cut_at_the_wall_deadline_are_counted_as_the_engine_counted_them(engine):
    # beam search under a wall budget on the real engine: steps in flight at the deadline are
    # aborted; the tokens they generated before the cut are in the ledger, exactly
    search = make_strategy("beam_search", n=4, width=2, max_steps=40, step_tokens=64, final_tokens=256)
    solver = Solver(engine, search, ArithmeticScorer(), budget=Budget(wall_s=1.5), seed=5)
    await asyncio.sleep(1.0)
    before = vllm_counters()
    r = await solver.solve(PROBLEMS[1])
    await asyncio.sleep(2.0)
    after = vllm_counters()
    assert r.ledger.aborted_requests > 0 and r.ledger.aborted_tokens > 0
    assert r.ledger.generated_tokens == after[2] - before[2]
