"""First Finish Search (Agarwal et al. 2025): the first sample to reach EOS wins.

n samples stream concurrently; the first to finish with EOS (a length cap is no finish)
is the answer and the rest are aborted at once, their tokens so far counted as aborted in
the ledger. "First" is by the time a sample's last token arrived, not by the order its task
ended: several may end in one wake-up, and one may get its last token just before the
others are cancelled. Such a sample is finished, never labelled aborted. `sync` mode
samples all n and returns the shortest EOS-finished one. If none finishes, majority over
the truncated answers.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import Field

from ..runtime.contract import Sampling, StrategyContext
from ..records.result import Result
from ..records.trace import Node, StreamedChild
from ..verifiers.voting import select_async
from .base import Configured, StrategyConfig
from .thinking_budget import ThinkingBudget, sample_all, sample_stream


class FirstFinishConfig(StrategyConfig):
    n: int = Field(8, ge=1)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1)
    mode: Literal["async", "sync"] = "async"
    thinking_budget: ThinkingBudget | None = None  # each sample budget-forced (strategies/thinking_budget.py)


class FirstFinish(Configured[FirstFinishConfig], name="first_finish"):
    async def run(self, ctx: StrategyContext) -> Result:
        return await (self._sync(ctx) if self.config.mode == "sync" else self._async(ctx))

    async def _sync(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        sampling = ctx.sampling(n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens)
        nodes = [node for node, _ in await sample_all(ctx, ctx.tree.root, sampling, cfg.thinking_budget)]
        return await self._answer(ctx, nodes, {})

    async def _async(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        t0 = ctx.tree.now()
        samples = [StreamedChild(ctx.tree, ctx.tree.root) for _ in range(cfg.n)]
        pending = {
            asyncio.create_task(self._one(ctx, ctx.sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens), s))
            for s in samples
        }
        try:
            while pending and not any(s.finish == "eos" for s in samples):
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # an engine error ends the search
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        latency = ctx.tree.now() - t0
        nodes = [s.node(sample=i) for i, s in enumerate(samples)]  # a sample without its last token: abort
        eos = sorted((s.t_end, i) for i, s in enumerate(samples) if s.finish == "eos")
        metrics = {"latency_s": round(latency, 3), "aborted": sum(n.finish == "abort" for n in nodes)}
        return await self._answer(ctx, [nodes[eos[0][1]]] if eos else nodes, metrics)

    async def _one(self, ctx: StrategyContext, sampling: Sampling, sample: StreamedChild) -> None:
        async for d in sample_stream(ctx, ctx.tree.root, sampling, self.config.thinking_budget):
            sample.add(d)

    async def _answer(self, ctx: StrategyContext, nodes: list[Node], metrics: dict[str, float]) -> Result:
        finished = sorted((n for n in nodes if n.finish == "eos"), key=lambda n: len(n.generated_ids))
        if finished:
            chosen = ctx.candidate(finished[0])
            return ctx.result(self.name, chosen, [ctx.candidate(n) for n in nodes], {**metrics, "winner_tokens": len(finished[0].generated_ids)})
        candidates = [ctx.candidate(n) for n in nodes]
        return ctx.result(self.name, await select_async(candidates, "majority"), candidates, {**metrics, "fallback": 1})
