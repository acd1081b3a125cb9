"""Particle filtering (Puri et al. 2025, its_hub).

P particles advance one step at a time; weights are the softmax of PRM scores over a
temperature, and the active particles are resampled (multinomial, seeded) after every
step, so promising trajectories multiply and weak ones die out. Finished particles stay.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from typing import ClassVar

from pydantic import Field

from ..runtime.context import Context
from ..records.result import Result
from ..records.trace import Node
from ..verifiers.voting import select
from .base import StrategyConfig


class ParticleFilteringConfig(StrategyConfig):
    particles: int = Field(8, ge=1)
    max_steps: int = Field(40, ge=1)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    step_tokens: int = Field(256, ge=1)
    final_tokens: int = Field(1024, ge=1)
    weight_temperature: float = Field(1.0, gt=0)
    aggregate: str = "last"
    selection: str = "best"
    seed: int = 0


def softmax(values: list[float], temperature: float) -> list[float]:
    top = max(values)
    exps = [math.exp((v - top) / temperature) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


class ParticleFiltering:
    name: ClassVar[str] = "particle_filtering"
    Config: ClassVar[type[StrategyConfig]] = ParticleFilteringConfig
    needs_scorer: ClassVar[bool] = True

    def __init__(self, config: ParticleFilteringConfig) -> None:
        self.config = config

    async def run(self, ctx: Context) -> Result:
        cfg = self.config
        rng = random.Random(cfg.seed)
        particles: list[Node] = [ctx.tree.root] * cfg.particles
        finished: list[tuple[Node, float]] = []
        resamples = 0
        for step in range(cfg.max_steps):
            last = step == cfg.max_steps - 1 or ctx.exhausted()
            # identical particles (after resampling) share one request: one prefill, n samples
            groups = Counter(p.id for p in particles)
            batches = await asyncio.gather(*(
                ctx.expand(ctx.tree.node(pid), ctx.step_sampling(k, cfg.temperature, cfg.top_p, cfg.step_tokens, cfg.final_tokens, last), cfg.aggregate)
                for pid, k in groups.items()
            ))
            children = [c for b in batches for c in b]
            finished += [c for c in children if ctx.done(c[0]) or last]
            active = [c for c in children if not (ctx.done(c[0]) or last)]
            if not active:
                break
            weights = softmax([s for _, s in active], cfg.weight_temperature)
            for (node, _), w in zip(active, weights):
                ctx.tree.set(node, weight=round(w, 6))
            particles = [node for node, _ in rng.choices(active, weights=weights, k=len(active))]
            resamples += 1
        candidates = [ctx.candidate(node, score) for node, score in finished]
        return ctx.result(self.name, select(candidates, cfg.selection), candidates, {"resamples": resamples})
