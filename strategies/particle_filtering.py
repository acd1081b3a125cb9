"""Particle filtering (Puri et al. 2025, its_hub).

P particles advance one step at a time. A particle's log-weight is the logit of its PRM
reward (clipped away from 0 and 1), so a reward of 0.9 outweighs one of 0.1 by 81x, where a
softmax over raw rewards would give 2.2x. After every step the whole population is resampled
(multinomial, from the problem's seed stream and `seed`) from softmax(log-weight / temperature): finished particles stay in it
with their final weight, and one drawn again is copied, not continued. The search ends when
every particle has finished; the answer is chosen among the finished particles left.

Particle Gibbs (`iterations` > 1): each later iteration runs the filter again with one
reference particle, the previous iteration's highest-weight finished trajectory. The
reference is not sampled: at step t it is its own trajectory's t-th node, with the score
it had; it always survives resampling, and the copies drawn of it are ordinary particles
that sample on from there. The answer comes from the last iteration.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import NamedTuple

from pydantic import Field

from ..records.result import Result
from ..records.trace import Node
from ..runtime.contract import StrategyContext
from ..verifiers.voting import Selection, select_async
from .base import Configured, StepConfig, together

CLIP = 1e-7  # rewards of exactly 0 or 1 would give infinite log-weights


class ParticleFilteringConfig(StepConfig):
    particles: int = Field(8, ge=1)
    max_steps: int = Field(40, ge=1)
    weight_temperature: float = Field(1.0, gt=0)
    selection: Selection = "best"  # best = highest weight
    seed: int = 0
    iterations: int = Field(1, ge=1)  # > 1: particle Gibbs


class Particle(NamedTuple):
    node: Node
    reward: float
    done: bool
    ref: bool = False  # the reference trajectory of particle Gibbs


def log_weight(reward: float) -> float:
    p = min(max(reward, CLIP), 1 - CLIP)
    return math.log(p / (1 - p))


def softmax(values: list[float], temperature: float) -> list[float]:
    top = max(values)
    exps = [math.exp((v - top) / temperature) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


class ParticleFiltering(Configured[ParticleFilteringConfig], name="particle_filtering", needs_scorer=True):
    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        rng = ctx.random(cfg.seed)  # the problem's own draws: resampling differs between problems
        reference: list[Node] = []
        totals: Counter[str] = Counter()
        for iteration in range(cfg.iterations):
            if iteration and ctx.exhausted():
                break
            population = await self._filter(ctx, rng, reference, iteration, totals)
            best = max(population, key=lambda p: p.reward)
            reference = ctx.tree.path(best.node)
        finished = {p.node.id: p for p in population}.values()
        candidates = [ctx.candidate(p.node, p.reward) for p in finished]
        metrics = {"resamples": totals["resamples"], "finished_resampled": totals["finished_resampled"], "iterations": iteration + 1}
        return ctx.result(self.name, await select_async(candidates, cfg.selection), candidates, metrics)

    async def _filter(self, ctx: StrategyContext, rng: random.Random, reference: list[Node], iteration: int, totals: Counter[str]) -> list[Particle]:
        """One run of the filter; returns the final population, every particle finished."""
        cfg = self.config
        free = cfg.particles - bool(reference)  # particles that are resampled
        population = [Particle(ctx.tree.root, 0.5, False)] * free
        ref = Particle(ctx.tree.root, 0.5, False, True) if reference else None
        for step in range(cfg.max_steps):
            last = step == cfg.max_steps - 1 or ctx.exhausted()
            # particles on one node (copies after resampling) share one request: one prefill, k samples
            groups = Counter(p.node.id for p in population if not p.done)
            batches = await together(
                ctx.expand(ctx.tree.node(nid), ctx.step_sampling(k, cfg.temperature, cfg.top_p, cfg.step_tokens, cfg.final_tokens, last), cfg.aggregate)
                for nid, k in groups.items()
            )
            children = [Particle(node, r, last or ctx.done(node)) for batch in batches for node, r in batch]
            for child in children:
                ctx.tree.set(child.node, iteration=iteration)
            population = [p for p in population if p.done] + children
            if ref is not None and not ref.done:  # the reference moves along its own trajectory
                node = reference[step]
                ref = Particle(node, ctx.tree.score(node) or 0.0, node is reference[-1] or last, True)
            everyone = population + ([ref] if ref is not None else [])
            if all(p.done for p in everyone):
                return everyone
            weights = softmax([log_weight(p.reward) for p in everyone], cfg.weight_temperature)
            for p, w in zip(everyone, weights):
                ctx.tree.set(p.node, weight=w)
            population = [p._replace(ref=False) for p in rng.choices(everyone, weights=weights, k=free)]
            totals["finished_resampled"] += sum(p.done for p in population)
            totals["resamples"] += 1
        return population + ([ref] if ref is not None else [])
