"""DeepConf (Fu et al. 2025): confidence-filtered voting from token logprobs.

Token confidence C_i = -mean of the top-k logprobs at position i (peaked distributions give
large values); group confidence = mean of C over a sliding window of tokens; a trace's
confidence is its lowest group confidence.
- offline: sample n traces, keep the top η% by confidence, confidence-weighted majority vote.
- online: `warmup` traces sampled in full set the threshold (the confidence that keeps η% of
  them); the other traces stream, and one whose current window confidence falls below the
  threshold is aborted at once. The vote runs over the warm-up traces that pass and the
  traces that finished.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import ClassVar, Literal, Sequence

from pydantic import Field

from ..runtime.context import Context
from ..records.result import Candidate, Result
from ..records.trace import Node
from ..verifiers.voting import select
from .base import Configured, StrategyConfig


class DeepConfConfig(StrategyConfig):
    mode: Literal["offline", "online"] = "offline"
    n: int = Field(16, ge=1)  # traces in all (online: warm-up included)
    warmup: int = Field(4, ge=1)
    eta: float = Field(10.0, gt=0, le=100)  # percent of traces kept
    window: int = Field(2048, ge=1)
    top_k: int = Field(20, ge=1)
    max_tokens: int = Field(2048, ge=1)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)


def token_confidence(top: Sequence[float]) -> float:
    return -sum(top) / len(top) if top else 0.0


def lowest_group_confidence(tops: Sequence[Sequence[float]], window: int) -> float:
    conf = [token_confidence(t) for t in tops]
    if not conf:
        return 0.0
    if len(conf) <= window:
        return sum(conf) / len(conf)
    run = sum(conf[:window])
    low = run
    for i in range(window, len(conf)):
        run += conf[i] - conf[i - window]
        low = min(low, run)
    return low / window


class DeepConf(Configured[DeepConfConfig]):
    name: ClassVar[str] = "deepconf"
    Config: ClassVar[type[StrategyConfig]] = DeepConfConfig
    needs_scorer: ClassVar[bool] = False

    def _sampling(self, ctx: Context, n: int):
        cfg = self.config
        return ctx.sampling(n=n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens, logprobs=cfg.top_k)

    async def run(self, ctx: Context) -> Result:
        cfg = self.config
        first = cfg.n if cfg.mode == "offline" else min(cfg.warmup, cfg.n)
        traces = []
        for node, c in await ctx.extend_with(ctx.tree.root, self._sampling(ctx, first), warmup=cfg.mode == "online"):
            conf = lowest_group_confidence(c.top_logprobs or (), cfg.window)
            ctx.tree.set(node, confidence=round(conf, 4))
            traces.append((node, conf))
        keep = max(1, math.ceil(len(traces) * cfg.eta / 100))
        ranked = sorted(traces, key=lambda x: x[1], reverse=True)
        threshold = ranked[keep - 1][1]
        metrics: dict[str, float] = {"threshold": round(threshold, 4)}
        if cfg.mode == "offline":
            voters = ranked[:keep]
        else:
            voters = [t for t in traces if t[1] >= threshold]
            online = await asyncio.gather(*(self._online(ctx, threshold) for _ in range(cfg.n - first)))
            voters += [t for t in online if t[0].finish != "abort"]
            metrics["aborted"] = sum(t[0].finish == "abort" for t in online)
        candidates = [Candidate(n.text, ctx.candidate(n).answer, score=c, finish=n.finish, tokens=len(n.generated_ids), node=n.id) for n, c in voters]
        return ctx.result(self.name, select(candidates, "weighted"), candidates, {**metrics, "voters": len(voters)})

    async def _online(self, ctx: Context, threshold: float) -> tuple[Node, float]:
        """Stream one trace; abort it when its window confidence drops below the threshold."""
        cfg = self.config
        ids, pieces, tops = [], [], []
        window: deque[float] = deque(maxlen=cfg.window)
        low, finish, t0 = math.inf, "abort", ctx.tree.now()
        stream = ctx.stream(ctx.tree.root, self._sampling(ctx, 1))
        try:
            async for d in stream:
                ids += d.token_ids
                pieces.append(d.text)
                for top in d.top_logprobs or ():
                    tops.append(top)
                    window.append(token_confidence(top))
                if len(window) == window.maxlen or d.finish_reason is not None:
                    low = min(low, sum(window) / max(len(window), 1))
                if d.finish_reason is not None:
                    finish = d.finish_reason
                elif len(window) == window.maxlen and low < threshold:
                    break  # low confidence: stop spending tokens on this trace
        finally:
            await stream.aclose()
        conf = low if low != math.inf else lowest_group_confidence(tops, cfg.window)
        node = ctx.tree.add(ctx.tree.root, ids, "".join(pieces), finish, t0, confidence=round(conf, 4), warmup=False)
        return node, conf
