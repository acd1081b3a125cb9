"""Helpers for tests on the real engine: a solver with the arithmetic PRM, vLLM's own counters,
and an engine wrapper that keeps every stream, to check the ledger and the prefix cache against
what the engine itself did."""

from __future__ import annotations

import asyncio

from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.verifiers.arithmetic import ArithmeticScorer


def solver(engine, name, **config):
    return Solver(engine, make_strategy(name, **config), ArithmeticScorer(), seed=1)


def vllm_counters() -> tuple[float, float, float]:
    from prometheus_client import REGISTRY

    totals = {"vllm:request_success_total": 0.0, "vllm:prompt_tokens_total": 0.0, "vllm:generation_tokens_total": 0.0}
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals["vllm:request_success_total"], totals["vllm:prompt_tokens_total"], totals["vllm:generation_tokens_total"]


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
