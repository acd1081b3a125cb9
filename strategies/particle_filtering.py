"""Particle filtering (Puri et al. 2025, its_hub).

P particles advance one step at a time. A particle's log-weight is the logit of its PRM
reward (clipped away from 0 and 1), so a reward of 0.9 outweighs one of 0.1 by 81x, where a
softmax over raw rewards would give 2.2x. After every step the whole population is resampled
(multinomial, seeded) from softmax(log-weight / temperature): finished particles stay in it
with their final weight, and one drawn again is copied, not continued. The search ends when
every particle has finished; the answer is chosen among the finished particles left.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from typing import ClassVar, NamedTuple

from pydantic import Field

from ..records.result import Result
from ..records.trace import Node
from ..runtime.context import Context
from ..verifiers.voting import Selection, select
from .base import Aggregate, Configured, StrategyConfig

CLIP = 1e-7  # rewards of exactly 0 or 1 would give infinite log-weights


class ParticleFilteringConfig(StrategyConfig):
    particles: int = Field(8, ge=1)
    max_steps: int = Field(40, ge=1)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    step_tokens: int = Field(256, ge=1)
    final_tokens: int = Field(1024, ge=1)
    weight_temperature: float = Field(1.0, gt=0)
    aggregate: Aggregate = "last"
    selection: Selection = "best"  # best = highest weight
    seed: int = 0


class Particle(NamedTuple):
    node: Node
    reward: float
    done: bool


def log_weight(reward: float) -> float:
    p = min(max(reward, CLIP), 1 - CLIP)
    return math.log(p / (1 - p))


def softmax(values: list[float], temperature: float) -> list[float]:
    top = max(values)
    exps = [math.exp((v - top) / temperature) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


class ParticleFiltering(Configured[ParticleFilteringConfig]):
    name: ClassVar[str] = "particle_filtering"
    Config: ClassVar[type[StrategyConfig]] = ParticleFilteringConfig
    needs_scorer: ClassVar[bool] = True

    async def run(self, ctx: Context) -> Result:
        cfg = self.config
        rng = random.Random(cfg.seed)
        population = [Particle(ctx.tree.root, 0.5, False)] * cfg.particles
        resamples = kept_finished = 0
        for step in range(cfg.max_steps):
            last = step == cfg.max_steps - 1 or ctx.exhausted()
            # particles on one node (copies after resampling) share one request: one prefill, k samples
            groups = Counter(p.node.id for p in population if not p.done)
            batches = await asyncio.gather(*(
                ctx.expand(ctx.tree.node(nid), ctx.step_sampling(k, cfg.temperature, cfg.top_p, cfg.step_tokens, cfg.final_tokens, last), cfg.aggregate)
                for nid, k in groups.items()
            ))
            children = [Particle(node, r, last or ctx.done(node)) for batch in batches for node, r in batch]
            population = [p for p in population if p.done] + children
            if all(p.done for p in population):
                break
            weights = softmax([log_weight(p.reward) for p in population], cfg.weight_temperature)
            for p, w in zip(population, weights):
                ctx.tree.set(p.node, weight=w)
            population = rng.choices(population, weights=weights, k=cfg.particles)
            kept_finished += sum(p.done for p in population)
            resamples += 1
        finished = {p.node.id: p for p in population if p.done}.values()
        candidates = [ctx.candidate(p.node, p.reward) for p in finished]
        metrics = {"resamples": resamples, "finished_resampled": kept_finished}
        return ctx.result(self.name, select(candidates, cfg.selection), candidates, metrics)
