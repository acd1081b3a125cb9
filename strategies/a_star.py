"""A*-decoding (Chatziveroglou 2025): best-first search over partial trajectories.

State = prompt + partial trajectory; goal = a trajectory that ended with EOS (a step cut at
`step_tokens` is a partial state like any other, continued when popped). The open list
is a min-heap on f = g + h with h = 1 - r (r = PRM score of the partial trajectory) and
g = λ·Σ(1 - r_step) over the path (`g: prm`) or λ·steps (`g: depth`). Each pop of a
non-goal samples k one-step continuations (one request) and scores them. With `push: all`
every child goes on the open list, so the next pop is the lowest f anywhere in the tree and
the search backtracks when a branch's scores fall. `push: best` puts only the best child
there and keeps the others as a fallback frontier used when the open list runs dry, which
makes the search greedy best-of-k per step. `max_tokens` and `max_verifier_calls` are a scope
of the problem's budgets (runtime/budget.py): hard limits, reserved before each request. On
budget exhaustion: the best complete trajectory found, else the best frontier node completed
greedily.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Literal, NamedTuple

from pydantic import Field

from ..records.result import Result
from ..records.trace import Node
from ..runtime.contract import Budget, StrategyContext
from .base import Configured, StepConfig


class AStarConfig(StepConfig):
    k: int = Field(4, ge=1)
    lam: float = Field(1.0, ge=0)
    g: Literal["prm", "depth"] = "prm"
    push: Literal["all", "best"] = "all"
    max_depth: int = Field(40, ge=1)
    max_tokens: int | None = Field(None, ge=1)  # generated-token budget of the search
    max_verifier_calls: int | None = Field(None, ge=1)  # PRM-call budget of the search


class Entry(NamedTuple):
    f: float
    tie: int  # insertion order breaks f ties: earlier first
    node: Node
    g: float
    r: float  # PRM score of the partial trajectory


class AStar(Configured[AStarConfig], name="a_star", needs_scorer=True):
    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        # the search's own budgets are a scope of the problem's: every request reserves from
        # them before it starts, so neither is overshot by a pop's k children
        ctx = ctx.scoped(Budget(generated_tokens=cfg.max_tokens, verifier_calls=cfg.max_verifier_calls))
        tie = itertools.count()
        open_list: list[Entry] = [Entry(0.0, next(tie), ctx.tree.root, 0.0, 0.0)]
        reserve: list[Entry] = []
        goals: list[tuple[Node, float]] = []
        pops = 0
        goal: Node | None = None
        while not ctx.exhausted():
            if not open_list:
                if not reserve:
                    break
                open_list, reserve = reserve, []
                heapq.heapify(open_list)
            ctx.tree.set(open_list[0].node, open=len(open_list))  # open-list size when it was popped
            e = heapq.heappop(open_list)
            ctx.tree.set(e.node, popped=pops, f=round(e.f, 6))
            pops += 1
            if e.node.finish == "eos":  # the goal: a trajectory the model ended
                goal = e.node
                break
            if e.node.depth >= cfg.max_depth or e.node.finish == "abort" or (e.node.id != ctx.tree.root.id and not e.node.step.strip()):
                continue  # nothing to continue: the depth limit, a request cut short, an empty step
            last = e.node.depth + 1 >= cfg.max_depth
            sampling = ctx.step_sampling(cfg.k, cfg.temperature, cfg.top_p, cfg.step_tokens, cfg.final_tokens, last)
            children = []
            for child, score in await ctx.expand(e.node, sampling, cfg.aggregate):
                g = e.g + (cfg.lam * (1.0 - score) if cfg.g == "prm" else cfg.lam)
                children.append(Entry(g + 1.0 - score, next(tie), child, g, score))
                ctx.tree.set(child, f=round(children[-1].f, 6), pushed=pops)
                if child.finish == "eos" or last:
                    goals.append((child, score))
            children.sort(key=lambda c: (-c.r, c.tie))
            keep = children if cfg.push == "all" else children[:1]
            for c in keep:
                heapq.heappush(open_list, c)
            for c in children[len(keep):]:
                ctx.tree.set(c.node, reserve=True)
            reserve.extend(children[len(keep):])
        metrics: dict[str, float] = {"pops": pops}
        if goal is None:
            metrics["fallback"] = 1
            if goals:
                goal = max(goals, key=lambda x: x[1])[0]
            else:
                frontier = sorted(open_list + reserve, key=lambda c: (-c.r, c.tie))
                best = frontier[0].node if frontier else ctx.tree.root
                (goal,) = await ctx.extend(best, ctx.sampling(temperature=0.0, max_tokens=cfg.final_tokens))
                ctx.tree.set(goal, completion=True)
        chosen = ctx.candidate(goal, ctx.tree.score(goal))
        others = [ctx.candidate(n, s) for n, s in goals if n.id != goal.id]
        return ctx.result(self.name, chosen, [chosen, *others], metrics)
