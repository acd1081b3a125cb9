"""Dynasor-CoT (Fu et al., "Efficiently Serving LLM Reasoning Programs with Certaindex").

A reasoning model often knows its answer long before it stops thinking. Each stream is
probed every `probe_interval` thinking tokens: a short side request continues the exact ids
of the stream so far plus an answer-forcing suffix, for at most `probe_tokens` tokens (its
prefix is the stream's own, so the engine serves it from the prefix cache). Once the last
`certainty_window` probes give the same answer and none of them hedges ("wait", "hmm", ...),
the stream is aborted and that answer returned. A stream that ends thinking, or ends, before
that answers as it wrote. With n streams each stops on its own; their answers are voted.
Probe requests are counted apart in the ledger (probe_requests, probe_tokens).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from pydantic import Field

from ..records.result import Candidate, Result
from ..records.trace import StreamedChild
from ..runtime.contract import StrategyContext, ThinkingConfig
from ..verifiers.answer import boxed, equivalent_async, normalise
from ..verifiers.voting import select_async
from .base import Configured, StrategyConfig, together
from .thinking_budget import ThinkingBudget, sample_stream

# the suffix and the hedging words of the Dynasor reference implementation
PROBE_SUFFIX = "... Oh, I suddenly got the answer to the whole problem, **Final Answer**\n\n\\[ \\boxed{"
HEDGES = ["wait", "hold", "but", "okay", "no", "hmm"]


class DynasorConfig(StrategyConfig):
    n: int = Field(1, ge=1)  # streams, each probed and stopped on its own
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(32768, ge=1)
    probe_interval: int = Field(32, ge=1)  # thinking tokens between probes
    probe_tokens: int = Field(20, ge=1)
    probe_temperature: float = Field(0.0, ge=0)
    certainty_window: int = Field(2, ge=1)  # consecutive agreeing probes that stop a stream
    probe_suffix: str = Field(PROBE_SUFFIX, min_length=1)
    hedges: list[str] = Field(default_factory=lambda: list(HEDGES))  # whole words, any case
    thinking_budget: ThinkingBudget | None = None  # each stream budget-forced too (strategies/thinking_budget.py)


@dataclass(frozen=True)
class Probe:
    answer: str  # "" when the probe closed no answer
    hedged: bool
    node: int
    text: str


class Dynasor(Configured[DynasorConfig], name="dynasor"):
    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        outcomes = await together([self._stream(ctx, i) for i in range(cfg.n)])
        candidates = [c for c, _, _ in outcomes]
        metrics = {
            "probes": sum(p for _, p, _ in outcomes), "early_exits": sum(e for _, _, e in outcomes),
            "probe_tokens": ctx.spent().probe_tokens,
        }
        return ctx.result(self.name, await select_async(candidates, "majority"), candidates, metrics)

    async def _probe(self, ctx: StrategyContext, ids: list[int]) -> Probe:
        cfg = self.config
        sampling = ctx.sampling(temperature=cfg.probe_temperature, max_tokens=cfg.probe_tokens)
        (node,) = await ctx.sample(ids + ctx.tokenizer.encode(cfg.probe_suffix), sampling, probe=True)
        found = boxed(cfg.probe_suffix + node.text)
        hedged = any(re.search(rf"\b{re.escape(w.lower())}\b", node.text.lower()) for w in cfg.hedges)
        return Probe(normalise(found) if found is not None else "", hedged, node.id, node.text)

    async def _certain(self, probes: list[Probe]) -> bool:
        window = probes[-self.config.certainty_window:]
        if len(window) < self.config.certainty_window or any(p.hedged or not p.answer for p in window):
            return False
        return all([await equivalent_async(p.answer, window[-1].answer) for p in window[:-1]])

    async def _stream(self, ctx: StrategyContext, index: int) -> tuple[Candidate, int, bool]:
        """One stream probed as it thinks: its candidate, the probes made, whether it stopped early."""
        cfg = self.config
        think = ctx.prompt.thinking or ThinkingConfig()
        root = ctx.tree.root
        child = StreamedChild(ctx.tree, root)
        opened = 0 if think.is_open(ctx.tokenizer.decode(root.ids[-256:])) else None  # where thinking began
        closed = False
        probes: list[Probe] = []
        mark = cfg.probe_interval
        certain = False
        sampling = ctx.sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens)
        async with contextlib.aclosing(sample_stream(ctx, root, sampling, cfg.thinking_budget)) as stream:
            async for d in stream:
                child.add(d)
                if d.finish_reason is not None:
                    break
                recent = child.text[-(len(d.text) + max(len(think.start), len(think.end))):]
                if opened is None and think.start in recent:
                    opened = len(child.ids)
                elif opened is not None and think.end in recent:
                    closed = True  # the answer is being written: nothing left to probe
                if opened is None or closed or len(child.ids) - opened < mark:
                    continue
                while mark <= len(child.ids) - opened:
                    mark += cfg.probe_interval
                probes.append(await self._probe(ctx, list(root.ids) + child.ids))
                if await self._certain(probes):
                    certain = True
                    break  # leaving the stream aborts it in the engine
        node = child.node("abort" if certain else None, probes=len(probes), early_exit=certain, stream=index)
        if not certain:
            return ctx.candidate(node), len(probes), False
        last = probes[-1]
        ctx.tree.set(ctx.tree.node(last.node), answered=True)
        text = node.text + cfg.probe_suffix + last.text
        return Candidate(text=text, answer=last.answer, finish="eos", tokens=len(node.generated_ids), node=last.node), len(probes), True
