"""A*-decoding (Chatziveroglou 2025): best-first search over partial trajectories.

State = prompt + partial trajectory; goal = a trajectory that ended with EOS. The open list
is a min-heap on f = g + h with h = 1 - r (r = PRM score of the partial trajectory) and
g = λ·Σ(1 - r_step) over the path (`g: prm`) or λ·steps (`g: depth`). Each pop of a
non-goal samples k one-step continuations (one request), scores them and pushes the best
(`push: best`, the paper's selection; the others wait in a fallback frontier used when the
open list runs dry) or all of them (`push: all`). On budget exhaustion: the best complete
trajectory found, else the best frontier node completed greedily.
"""

from __future__ import annotations

import heapq
import itertools
from typing import ClassVar, Literal

from pydantic import Field

from ..runtime.context import Context
from ..records.result import Result
from ..records.trace import Node
from .base import StrategyConfig


class AStarConfig(StrategyConfig):
    k: int = Field(4, ge=1)
    lam: float = Field(1.0, ge=0)
    g: Literal["prm", "depth"] = "prm"
    push: Literal["best", "all"] = "best"
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    step_tokens: int = Field(256, ge=1)
    final_tokens: int = Field(1024, ge=1)
    max_depth: int = Field(40, ge=1)
    max_tokens: int | None = Field(None, ge=1)  # generated-token budget of the search
    max_verifier_calls: int | None = Field(None, ge=1)  # PRM-call budget of the search
    aggregate: str = "last"


class AStar:
    name: ClassVar[str] = "a_star"
    Config: ClassVar[type[StrategyConfig]] = AStarConfig
    needs_scorer: ClassVar[bool] = True

    def __init__(self, config: AStarConfig) -> None:
        self.config = config

    def _out_of_budget(self, ctx: Context) -> bool:
        cfg, led = self.config, ctx.ledger
        return (
            ctx.exhausted()
            or (cfg.max_tokens is not None and led.generated_tokens >= cfg.max_tokens)
            or (cfg.max_verifier_calls is not None and led.verifier_calls >= cfg.max_verifier_calls)
        )

    async def run(self, ctx: Context) -> Result:
        cfg = self.config
        tie = itertools.count()
        open_list: list[tuple[float, int, Node, float, float]] = [(0.0, next(tie), ctx.tree.root, 0.0, 0.0)]  # f, tie, node, g, r
        reserve: list[tuple[float, int, Node, float, float]] = []
        goals: list[tuple[Node, float]] = []
        pops = 0
        goal: Node | None = None
        while not self._out_of_budget(ctx):
            if not open_list:
                if not reserve:
                    break
                open_list, reserve = reserve, []
                heapq.heapify(open_list)
            f, _, node, g, r = heapq.heappop(open_list)
            ctx.tree.set(node, popped=pops, f=round(f, 6))
            pops += 1
            if node.id != 0 and ctx.done(node):
                goal = node
                break
            last = node.depth + 1 >= cfg.max_depth
            scored = await ctx.expand(node, ctx.step_sampling(cfg.k, cfg.temperature, cfg.top_p, cfg.step_tokens, cfg.final_tokens, last), cfg.aggregate)
            entries = []
            for child, score in scored:
                step_cost = cfg.lam * (1.0 - score) if cfg.g == "prm" else cfg.lam
                child_g = g + step_cost
                entry = (child_g + 1.0 - score, next(tie), child, child_g, score)
                ctx.tree.set(child, f=round(entry[0], 6), pushed=pops)
                entries.append(entry)
                if ctx.done(child) or last:
                    goals.append((child, score))
            entries.sort(key=lambda e: (-e[4], e[1]))
            keep = entries if cfg.push == "all" else entries[:1]
            for e in keep:
                heapq.heappush(open_list, e)
            reserve.extend(entries[len(keep):])
        metrics: dict[str, float] = {"pops": pops}
        if goal is None:
            metrics["fallback"] = 1
            if goals:
                goal = max(goals, key=lambda x: x[1])[0]
            else:
                frontier = sorted(open_list + reserve, key=lambda e: (-e[4], e[1]))
                best = frontier[0][2] if frontier else ctx.tree.root
                (goal,) = await ctx.extend(best, ctx.sampling(temperature=0.0, max_tokens=cfg.final_tokens))
                ctx.tree.set(goal, completion=True)
        score = ctx.tree.score(goal)
        chosen = ctx.candidate(goal, score)
        others = [ctx.candidate(n, s) for n, s in goals if n.id != goal.id]
        return ctx.result(self.name, chosen, [chosen, *others], metrics)
