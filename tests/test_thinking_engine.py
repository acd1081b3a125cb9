"""Thinking budgets on the real engine: the embedded model with `<think>` opening its turn,
budget forcing and Dynasor-CoT end to end, the ledger against vLLM's own counters, and the
continuations and probes served from the prefix cache."""

from __future__ import annotations

import asyncio

from ponder.records.problem import Problem
from ponder.runtime.prompt import PromptConfig
from ponder.runtime.solver import Solver
from ponder.runtime.thinking import ThinkingConfig
from ponder.strategies.base import make_strategy

from .test_ledger import vllm_counters

COUNT = Problem(id="count", question="Count from 1 to 60, one number per line.")
SHORT = Problem(id="short", question="What is 2 + 2?", answer="4")
PREFILLED = PromptConfig(thinking=ThinkingConfig(prefill=True))


class Watched:
    """The engine, keeping the prompt ids, generated ids and usage of every streamed request."""

    def __init__(self, inner) -> None:
        self.inner, self.config = inner, inner.config
        self.streams: list[tuple[tuple[int, ...], list[int], object]] = []

    @property
    def tokenizer(self):
        return self.inner.tokenizer

    def stats(self):
        return self.inner.stats()

    async def generate(self, ids, sampling):
        return await self.inner.generate(ids, sampling)

    async def stream(self, ids, sampling):
        out: list[int] = []
        async for d in self.inner.stream(ids, sampling):
            out.extend(d.token_ids)
            if d.usage is not None:
                self.streams.append((tuple(ids), out, d.usage))
            yield d

    def cacheable(self, k: int, block: int = 32) -> int:
        """The prompt tokens of stream k that earlier streams computed, in whole blocks (a
        request computes its prompt and all it generated but the last token; the engine never
        serves a whole prompt from the cache)."""
        ids = self.streams[k][0]
        common = 0
        for prompt, out, _ in self.streams[:k]:
            computed = prompt + tuple(out[:-1])
            n = next((i for i, (a, b) in enumerate(zip(ids, computed)) if a != b), min(len(ids), len(computed)))
            common = max(common, n)
        return min(common, len(ids) - 1) // block * block

    async def close(self) -> None:
        return None


async def counted(solver, problem):
    await asyncio.sleep(1.0)  # the counters are updated from the engine's output loop
    before = vllm_counters()
    r = await solver.solve(problem)
    await asyncio.sleep(2.0)
    after = vllm_counters()
    # vLLM counts a request as a success when it finishes: the aborted ones are not in its count
    ours = (r.ledger.requests - r.ledger.aborted_requests, r.ledger.prompt_tokens, r.ledger.generated_tokens)
    assert ours == tuple(a - b for a, b in zip(after, before))
    return r


async def test_budget_forcing_cuts_thinking_at_the_cap_and_answers(engine):
    watched = Watched(engine)
    strategy = make_strategy("budget_forcing", n=2, max_thinking_tokens=32, answer_tokens=12, temperature=0.7)
    r = await counted(Solver(watched, strategy, prompt=PREFILLED, seed=4), COUNT)
    forced = engine.tokenizer.encode("</think>\n\nFinal Answer: \\boxed{")
    assert r.metrics["thinking_cut"] == 2 and r.ledger.thinking_tokens == 64 and 0 < r.ledger.answer_tokens <= 24
    for c in r.candidates:
        ids = r.trace.node(c.node).generated_ids
        assert list(ids[32:32 + len(forced)]) == forced  # 32 thinking tokens, then the forced end, token-exactly
        assert len(ids) - 32 - len(forced) <= 12
    # each answer request continues its sample's exact ids: served from the cache as far as they were computed
    answers = [k for k, (_, _, u) in enumerate(watched.streams) if u.generated_tokens <= 12]
    assert len(answers) == 2 and all(watched.streams[k][2].cached_tokens == watched.cacheable(k) > len(watched.streams[0][0]) // 32 * 32 for k in answers)


async def test_budget_forcing_appends_wait_when_thinking_ends_early(engine):
    # a paragraph break ends this model's "thinking": it ends early, and is made to go on
    paragraphs = PromptConfig(thinking=ThinkingConfig(end="\n\n", prefill=True))
    watched = Watched(engine)
    strategy = make_strategy("budget_forcing", min_thinking_tokens=400, max_thinking_tokens=480, max_waits=2, answer_tokens=8, temperature=0)
    r = await counted(Solver(watched, strategy, prompt=paragraphs), SHORT)
    wait = engine.tokenizer.encode("Wait")
    ids = list(r.trace.node(r.candidates[0].node).generated_ids)
    assert r.metrics["waits"] == 2 and r.ledger.requests == 4  # two early ends, then the answer after the third
    starts = [i for i in range(len(ids)) if ids[i:i + len(wait)] == wait]
    assert len(starts) >= 2
    # each continuation reads the sample's ids from the cache as far as the engine computed them
    assert [u.cached_tokens for _, _, u in watched.streams[1:]] == [watched.cacheable(k) for k in (1, 2, 3)]


async def test_dynasor_stops_streams_on_agreeing_probes_served_from_the_prefix_cache(engine):
    strategy = make_strategy("dynasor", n=2, probe_interval=16, probe_tokens=8, max_tokens=160, temperature=0.7)
    r = await counted(Solver(engine, strategy, prompt=PREFILLED, seed=1), SHORT)
    g = r.trace.graph
    probes = [a for _, a in g.nodes(data=True) if a.get("probe")]
    streams = [a for _, a in g.nodes(data=True) if "stream" in a]
    assert len(probes) == r.metrics["probes"] == r.ledger.probe_requests > 0
    assert r.ledger.probe_tokens == sum(a["tokens"] for a in probes)
    # a probe continues its stream's exact ids: the stream's full blocks come from the cache
    assert all(a["cached_tokens"] >= 64 for a in probes)
    assert r.metrics["early_exits"] == sum(a["early_exit"] for a in streams) >= 1
    assert all(a["finish"] == "abort" and a["probes"] >= 2 for a in streams if a["early_exit"])
    assert r.ledger.aborted_requests == r.metrics["early_exits"]
    # every generated token is a thinking, answer or probe token, those of aborted streams included
    assert r.ledger.thinking_tokens + r.ledger.answer_tokens + r.ledger.probe_tokens == r.ledger.generated_tokens
