"""PRM-guided step-level beam search (Snell et al. 2024; search-and-learn).

N beams in all, width M: keep the N/M best partial trajectories, expand each M times by one
step (text up to the delimiter, kept). Each beam's M samples are one generate call (the
beam's prefix computed once, every sample reading it from the cache) and are scored as soon as they return, so scoring
overlaps the other beams' generation; only the top-k choice waits for the whole step.
"""

from __future__ import annotations

from pydantic import Field

from ..runtime.contract import StrategyContext
from ..records.result import Result
from ..records.trace import Node
from ..verifiers.voting import Selection, select_async
from .base import Configured, WidthConfig, together


class BeamSearchConfig(WidthConfig):  # n = N, total beams; width = M, expansions per kept beam
    max_steps: int = Field(40, ge=1)
    dedup: bool = True  # drop beams whose text duplicates another's
    lookahead: int = Field(0, ge=0)  # k greedy steps rolled out to score a step, then discarded
    selection: Selection = "best"


class BeamSearch(Configured[BeamSearchConfig], name="beam_search", needs_scorer=True):
    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        keep = cfg.n // cfg.width
        completed: list[tuple[Node, float]] = []
        beams: list[tuple[Node, float]] = []
        for step in range(cfg.max_steps):
            last = step == cfg.max_steps - 1 or ctx.exhausted()
            parents = [(ctx.tree.root, cfg.n)] if step == 0 else [(b, cfg.width) for b, _ in beams]
            groups = await together(self._expand(ctx, p, k, last) for p, k in parents)
            children = [c for g in groups for c in g]
            if cfg.dedup:
                children = _unique(children)
            completed += [c for c in children if ctx.done(c[0]) or last]
            active = [c for c in children if not (ctx.done(c[0]) or last)]
            beams = sorted(active, key=lambda c: c[1], reverse=True)[:keep]
            if not beams or len(completed) >= cfg.n:
                break
        pool = completed or beams
        candidates = [ctx.candidate(node, score) for node, score in pool]
        return ctx.result(self.name, await select_async(candidates, cfg.selection), candidates, {"steps": step + 1})

    async def _expand(self, ctx: StrategyContext, parent: Node, n: int, last: bool) -> list[tuple[Node, float]]:
        cfg = self.config
        sampling = ctx.step_sampling(n, cfg.temperature, cfg.top_p, cfg.step_tokens, cfg.final_tokens, last)
        if not cfg.lookahead:
            return await ctx.expand(parent, sampling, cfg.aggregate)
        children = await ctx.extend(parent, sampling)
        return list(zip(children, await together(self._score(ctx, c) for c in children)))

    async def _score(self, ctx: StrategyContext, node: Node) -> float:
        """The score of `node` read after rolling `lookahead` greedy steps past it."""
        if ctx.done(node):
            return await ctx.score(node, self.config.aggregate)
        tip = node
        for _ in range(self.config.lookahead):
            (tip,) = await ctx.extend(tip, ctx.sampling(temperature=0.0, max_tokens=self.config.step_tokens, stop=(ctx.delimiter,)))
            ctx.tree.set(tip, lookahead=True)
            if ctx.done(tip):
                break
        value = await ctx.score(tip, self.config.aggregate)
        ctx.tree.set(node, score=value)
        return value


def _unique(children: list[tuple[Node, float]]) -> list[tuple[Node, float]]:
    """The first beam of each distinct text: duplicates would spend the width on one path."""
    seen: set[str] = set()
    out = []
    for child in children:
        if child[0].text not in seen:
            seen.add(child[0].text)
            out.append(child)
    return out
