"""DeepConf (Fu et al. 2025): confidence-filtered voting from token logprobs.

Token confidence C_i = -mean of the top-k logprobs at position i (peaked distributions give
large values), over the k alternatives only: vLLM adds the sampled token to the list when it
is outside the top k, and that entry is dropped. Group confidence = mean of C over a sliding
window of tokens; a trace's confidence is its lowest group confidence.
- offline: sample n traces, keep the top η% by confidence, confidence-weighted majority vote.
- online: `warmup` traces (16 in the paper) sampled in full set the threshold at the
  (100 - η)th percentile of their confidences; the other traces stream, and one whose
  window confidence falls below the threshold is aborted at once. The vote runs over the
  warm-up traces above the threshold and the traces that finished.
Presets: DeepConf-low keeps η = 10% (aggressive), DeepConf-high η = 90% (conservative).
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from typing import Literal, Sequence

from pydantic import Field, model_validator

from ..runtime.contract import StrategyContext
from ..records.result import Candidate, Result
from ..records.trace import Node, StreamedChild
from ..verifiers.confidence import token_confidence
from ..verifiers.voting import select_async
from .base import Configured, StrategyConfig, together
from .thinking_budget import ThinkingBudget, sample_all, sample_stream


PRESETS = {"low": 10.0, "high": 90.0}  # η, percent of traces kept


class DeepConfConfig(StrategyConfig):
    mode: Literal["offline", "online"] = "offline"
    n: int = Field(32, ge=1)  # traces in all (online: warm-up included)
    warmup: int = Field(16, ge=1)
    preset: Literal["low", "high"] = "low"
    eta: float | None = Field(None, gt=0, le=100)  # percent of traces kept; overrides the preset
    window: int = Field(2048, ge=1)
    top_k: int = Field(20, ge=1)
    max_tokens: int = Field(8192, ge=1)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    thinking_budget: ThinkingBudget | None = None  # each trace budget-forced (strategies/thinking_budget.py)

    @model_validator(mode="after")
    def _check(self) -> "DeepConfConfig":
        if self.window > self.max_tokens // 2:
            # a window that fills only near the end can never abort a trace in time
            raise ValueError(f"window ({self.window}) must be at most half of max_tokens ({self.max_tokens}) so it can fill early")
        if self.eta is not None and "preset" in self.model_fields_set:
            raise ValueError("set preset or eta, not both")
        return self

    @property
    def keep_percent(self) -> float:
        return self.eta if self.eta is not None else PRESETS[self.preset]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between ranks (numpy's default)."""
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def lowest_group_confidence(tops: Sequence[Sequence[float]], window: int, k: int) -> float:
    conf = [token_confidence(t, k) for t in tops]
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


class DeepConf(Configured[DeepConfConfig], name="deepconf"):
    def _sampling(self, ctx: StrategyContext, n: int):
        cfg = self.config
        return ctx.sampling(n=n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens, logprobs=cfg.top_k)

    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        first = cfg.n if cfg.mode == "offline" else min(cfg.warmup, cfg.n)
        traces = []
        for node, c in await sample_all(ctx, ctx.tree.root, self._sampling(ctx, first), cfg.thinking_budget, warmup=cfg.mode == "online"):
            conf = lowest_group_confidence(c.top_logprobs or (), cfg.window, cfg.top_k)
            ctx.tree.set(node, confidence=conf)
            traces.append((node, conf))
        if cfg.mode == "offline":
            keep = max(1, math.ceil(len(traces) * cfg.keep_percent / 100))
            voters = sorted(traces, key=lambda x: x[1], reverse=True)[:keep]
            threshold = voters[-1][1]
        else:
            threshold = percentile([c for _, c in traces], 100 - cfg.keep_percent)
            voters = [t for t in traces if t[1] >= threshold]
        metrics: dict[str, float] = {"threshold": threshold}
        if cfg.mode == "online":
            online = await together(self._online(ctx, threshold) for _ in range(cfg.n - first))
            voters += [t for t in online if t[0].finish != "abort"]
            metrics["aborted"] = sum(t[0].finish == "abort" for t in online)
        candidates = [Candidate(n.text, ctx.candidate(n).answer, score=c, finish=n.finish, tokens=len(n.generated_ids), node=n.id) for n, c in voters]
        return ctx.result(self.name, await select_async(candidates, "weighted"), candidates, {**metrics, "voters": len(voters)})

    async def _online(self, ctx: StrategyContext, threshold: float) -> tuple[Node, float]:
        """Stream one trace; abort it when its window confidence drops below the threshold."""
        cfg = self.config
        trace = StreamedChild(ctx.tree, ctx.tree.root)
        window: deque[float] = deque(maxlen=cfg.window)
        low = math.inf
        async with contextlib.aclosing(sample_stream(ctx, ctx.tree.root, self._sampling(ctx, 1), cfg.thinking_budget)) as stream:
            async for d in stream:
                trace.add(d)
                window.extend(token_confidence(top, cfg.top_k) for top in d.top_logprobs or ())
                if len(window) == window.maxlen or d.finish_reason is not None:
                    low = min(low, sum(window) / max(len(window), 1))
                if d.finish_reason is None and len(window) == window.maxlen and low < threshold:
                    break  # low confidence: stop spending tokens on this trace
        conf = low if low != math.inf else lowest_group_confidence(trace.tops, cfg.window, cfg.top_k)
        return trace.node(confidence=conf, warmup=False), conf
