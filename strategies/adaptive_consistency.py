"""Adaptive-Consistency (Aggarwal et al. 2023) and early-stopping self-consistency (Li et al. 2024).

Majority voting that stops sampling once the vote is decided. Samples are launched in waves
(default 4) up to `max_n`; the stopping rule is checked each time a sample finishes, and when
it fires the wave's samples still running are aborted (their tokens so far are in the ledger
as aborted). Rules:
- `beta` (Adaptive-Consistency): with v1, v2 the counts of the two leading answers, the
  posterior p1 ~ Beta(v1 + 1, v2 + 1) of the leader's share among the two; stop when
  P(p1 > 1/2) >= `confidence` (0.95).
- `esc` (early-stopping self-consistency): stop when the last `window` finished samples all
  give the same answer.
"""

from __future__ import annotations

import asyncio
from math import comb
from typing import Literal, Sequence

from pydantic import Field

from ..records.result import Candidate, Result
from ..records.trace import Node, StreamedChild
from ..runtime.contract import StrategyContext
from ..verifiers.voting import clusters_async, select_async
from .base import Configured, StrategyConfig
from .thinking_budget import ThinkingBudget, sample_stream


class AdaptiveConsistencyConfig(StrategyConfig):
    wave: int = Field(4, ge=1)  # samples launched together
    max_n: int = Field(32, ge=1)
    rule: Literal["beta", "esc"] = "beta"
    confidence: float = Field(0.95, gt=0, lt=1)  # beta rule
    window: int = Field(8, ge=1)  # esc rule
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1)
    thinking_budget: ThinkingBudget | None = None  # each sample budget-forced (strategies/thinking_budget.py)


def leader_probability(v1: int, v2: int) -> float:
    """P(p > 1/2) for p ~ Beta(v1 + 1, v2 + 1). For integer parameters a, b,
    P(p <= x) = P(Binomial(a + b - 1, x) >= a), so at x = 1/2 it is a binomial tail."""
    a, n = v1 + 1, v1 + v2 + 1
    return sum(comb(n, j) for j in range(a)) / 2**n


class AdaptiveConsistency(Configured[AdaptiveConsistencyConfig], name="adaptive_consistency"):
    async def decided(self, answers: Sequence[Candidate]) -> tuple[bool, float]:
        """Whether the vote over the finished samples is settled, and the rule's statistic.
        Clustering awaits math-verify off the loop: other problems and streams go on meanwhile."""
        cfg = self.config
        if cfg.rule == "esc":
            last = list(answers[-cfg.window:])
            same = len(last) == cfg.window and all(c.answer for c in last) and len(await clusters_async(last)) == 1
            return same, float(same)
        counts = sorted((len(g) for g in await clusters_async(answers)), reverse=True) + [0, 0]
        p = leader_probability(counts[0], counts[1]) if counts[0] else 0.0
        return p >= cfg.confidence, p

    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        finished: list[Node] = []
        candidates: list[Candidate] = []
        launched = aborted = waves = 0
        stop, stat = False, 0.0
        while not stop and launched < cfg.max_n and not ctx.exhausted():
            waves += 1
            size = min(cfg.wave, cfg.max_n - launched)
            tasks = [asyncio.create_task(self._sample(ctx, launched + i, waves)) for i in range(size)]
            launched += size
            pending = set(tasks)
            try:
                while pending and not stop:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in sorted(done, key=tasks.index):  # a fixed order when several finish together
                        finished.append(task.result())
                        candidates.append(ctx.candidate(finished[-1]))
                    stop, stat = await self.decided(candidates)
            finally:
                aborted += sum(task.cancel() for task in pending)
                await asyncio.gather(*pending, return_exceptions=True)
        metrics = {"samples": len(finished), "launched": launched, "aborted": aborted, "waves": waves, "decided": int(stop), "statistic": round(stat, 4)}
        chosen = await select_async(candidates, "majority") if candidates else None
        return ctx.result(self.name, chosen, candidates, metrics)

    async def _sample(self, ctx: StrategyContext, index: int, wave: int) -> Node:
        """One streamed sample; if cancelled, its tokens so far go into the tree as aborted."""
        cfg = self.config
        child = StreamedChild(ctx.tree, ctx.tree.root)
        try:
            sampling = ctx.sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens)
            async for d in sample_stream(ctx, ctx.tree.root, sampling, cfg.thinking_budget):
                child.add(d)
        finally:
            node = child.node(sample=index, wave=wave)
        return node
