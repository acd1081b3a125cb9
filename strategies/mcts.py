"""Step-level Monte Carlo tree search (AlphaMath Almost Zero, Chen et al. 2024; rStar).

A vertex is a partial trajectory (a node of the trace, continued token-exactly). One
simulation: select a leaf by PUCT (or UCT) from the root, expand it with k one-step children
in one request, evaluate every child by the step scorer (or by a greedy rollout to the end,
scored), and back each child's value up to the root. W simulations are in flight at once:
a selected path carries a virtual loss (an unfinished visit of value 0) until its backup, and
a leaf being expanded cannot be selected again, so concurrent simulations spread over
different leaves and the engine batch stays full. Terminal trajectories (EOS, length cap,
empty step, last allowed depth, finished rollouts) are the candidates. Budgets: simulations,
and generated tokens and verifier calls as a scope of the problem's budgets; an expansion
holds its k children's tokens and calls before it starts (runtime/budget.py), so none is
overshot and no child goes unscored.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field, replace
from typing import Literal, Sequence

from pydantic import Field

from ..records.result import Candidate, Result
from ..records.trace import Node, split_steps
from ..runtime.contract import Budget, StrategyContext
from ..verifiers.voting import select_async
from .base import Configured, StepConfig, together


class MCTSConfig(StepConfig):
    simulations: int = Field(32, ge=1)  # expansions in all
    k: int = Field(4, ge=1)  # children per expansion, one request
    c: float = Field(1.0, ge=0)  # exploration constant
    rule: Literal["puct", "uct"] = "puct"
    prior: Literal["probability", "uniform"] = "probability"  # PUCT prior of a child step
    parallel: int = Field(4, ge=1)  # W simulations in flight
    virtual_loss: float = Field(1.0, ge=0)  # visits of value 0 a path carries while in flight
    rollout: bool = False  # evaluate a child by a greedy rollout to the end, scored
    answer: Literal["visits", "value", "vote"] = "visits"
    max_depth: int = Field(40, ge=1)
    max_tokens: int | None = Field(None, ge=1)  # generated-token budget of the search
    max_verifier_calls: int | None = Field(None, ge=1)


@dataclass(eq=False)
class Vertex:
    node: Node
    prior: float = 1.0
    visits: int = 0
    total: float = 0.0
    virtual: int = 0  # simulations in flight through this vertex
    terminal: bool = False
    busy: bool = False  # being expanded
    children: list[Vertex] = field(default_factory=list)
    finished: tuple[Node, float] | None = None  # a finished rollout from here

    def n(self, vl: float) -> float:
        return self.visits + vl * self.virtual

    def q(self, vl: float) -> float:
        n = self.n(vl)
        return self.total / n if n else 0.0


def pick(parent: Vertex, children: Sequence[Vertex], c: float, rule: str, vl: float) -> Vertex:
    """The child maximising Q + exploration; in-flight visits count as losses (virtual loss)."""
    n_parent = max(parent.n(vl), 1.0)

    def key(v: Vertex) -> float:
        n = v.n(vl)
        if rule == "uct":
            return v.q(vl) + c * math.sqrt(math.log(n_parent + 1) / max(n, 1e-9))
        return v.q(vl) + c * v.prior * math.sqrt(n_parent) / (1 + n)

    return max(children, key=key)  # max keeps the first on ties: sampling order


def selectable(v: Vertex) -> bool:
    return not v.terminal and not v.busy and (not v.children or any(selectable(ch) for ch in v.children))


class MCTS(Configured[MCTSConfig], name="mcts", needs_scorer=True):
    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        # the search's budgets, a scope of the problem's; each expansion holds its k children's
        # tokens and verifier calls before it starts, so none is overshot
        ctx = ctx.scoped(Budget(generated_tokens=cfg.max_tokens, verifier_calls=cfg.max_verifier_calls))
        root = Vertex(ctx.tree.root)
        inflight: dict[asyncio.Task, list[Vertex]] = {}
        terminals: list[tuple[Node, float]] = []
        sims = peak = 0
        try:
            while True:
                while len(inflight) < cfg.parallel and sims < cfg.simulations and not ctx.exhausted():
                    if not selectable(root):
                        break
                    path = self._select(root)
                    held = ctx.hold(cfg.k, self._cap(path[-1]), calls=cfg.k)
                    if held is None:
                        break
                    for v in path:
                        v.virtual += 1
                    path[-1].busy = True
                    ctx.tree.set(path[-1].node, expanded=sims, inflight=len(inflight) + 1)
                    sims += 1
                    inflight[asyncio.create_task(self._expand(ctx, *held, path[-1]))] = path
                    peak = max(peak, len(inflight))
                if not inflight:
                    break
                done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    path = inflight.pop(task)
                    for v in path:
                        v.virtual -= 1
                    path[-1].busy = False
                    for child, value in task.result():
                        for v in path:
                            v.visits += 1
                            v.total += value
                        if child.terminal:
                            terminals.append((child.node, value))
                        if child.finished:
                            terminals.append(child.finished)
        finally:
            for task in inflight:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)
        for v in _walk(root):
            ctx.tree.set(v.node, visits=v.visits, value=round(v.q(0.0), 4))
        metrics: dict[str, float] = {"simulations": sims, "peak_inflight": peak, "terminals": len(terminals), "root_visits": root.visits}
        candidates = [ctx.candidate(n, s) for n, s in terminals]
        if not candidates:
            metrics["fallback"] = 1
            node = await self._complete(ctx, max(_walk(root), key=lambda v: (round(v.q(0.0), 9), v.node.depth)).node)
            chosen = ctx.candidate(node, ctx.tree.score(node))
            return ctx.result(self.name, chosen, [chosen], metrics)
        return ctx.result(self.name, await self._answer(root, terminals, candidates), candidates, metrics)

    def _select(self, root: Vertex) -> list[Vertex]:
        """The path from the root to a leaf that is neither terminal nor being expanded."""
        cfg, path = self.config, [root]
        while path[-1].children:
            path.append(pick(path[-1], [ch for ch in path[-1].children if selectable(ch)], cfg.c, cfg.rule, cfg.virtual_loss))
        return path

    def _cap(self, leaf: Vertex) -> int:
        cfg = self.config
        return cfg.final_tokens if leaf.node.depth + 1 >= cfg.max_depth else cfg.step_tokens

    async def _expand(self, ctx: StrategyContext, pot: StrategyContext, cap: int, leaf: Vertex) -> list[tuple[Vertex, float]]:
        """k children of `leaf` in one request, each evaluated, paid from `pot` (held for
        them by the caller) and given back as the expansion ends."""
        cfg = self.config
        try:
            last = leaf.node.depth + 1 >= cfg.max_depth
            sampling = pot.step_sampling(cfg.k, cfg.temperature, cfg.top_p, cfg.step_tokens, cfg.final_tokens, last)
            sampling = replace(sampling, max_tokens=min(sampling.max_tokens, cap), logprobs=0 if cfg.prior == "probability" else None)
            pairs = await pot.extend_with(leaf.node, sampling)
            priors = _priors([c.token_logprobs for _, c in pairs]) if cfg.prior == "probability" else [1.0 / len(pairs)] * len(pairs)
            children = [Vertex(node, prior, terminal=pot.done(node) or last) for (node, _), prior in zip(pairs, priors)]
            values = await together(self._evaluate(ctx, pot, ch) for ch in children)
        finally:
            pot.release()
        for ch, value in zip(children, values):
            ch.visits, ch.total = 1, value
            ctx.tree.set(ch.node, prior=round(ch.prior, 4), score=value)
        leaf.children = children
        return list(zip(children, values))

    async def _evaluate(self, ctx: StrategyContext, pot: StrategyContext, child: Vertex) -> float:
        """The child's value: its score (a verifier call from the expansion's pot), or with
        `rollout` the score of a greedy rollout to the end, when its tokens can be held."""
        cfg = self.config
        held = None if child.terminal or not cfg.rollout else ctx.hold(1, cfg.final_tokens)
        if held is None:
            return await pot.score(child.node, cfg.aggregate)
        roll, per = held
        try:
            (tip,) = await roll.extend(child.node, roll.sampling(temperature=0.0, max_tokens=per), rollout=True)
        finally:
            roll.release()
        value = await pot.score(tip, cfg.aggregate, ctx.tree.steps(child.node) + split_steps(tip.step, ctx.delimiter))
        if tip.finish == "eos":
            child.finished = (tip, value)
        return value

    async def _complete(self, ctx: StrategyContext, node: Node) -> Node:
        """The best partial trajectory, finished greedily with what the token budget has left."""
        if ctx.exhausted():
            return node
        (tip,) = await ctx.extend(node, ctx.sampling(temperature=0.0, max_tokens=self.config.final_tokens), completion=True)
        return tip

    async def _answer(self, root: Vertex, terminals: list[tuple[Node, float]], candidates: list[Candidate]) -> Candidate:
        how = self.config.answer
        if how == "vote":
            return await select_async(candidates, "majority")
        if how == "value":
            return max(candidates, key=lambda c: c.score or 0.0)
        # the most-visited path, among children that lead to a terminal
        ends = {n.id for n, _ in terminals}
        v = root
        while not v.terminal:
            options = [ch for ch in v.children if _reaches(ch, ends)]
            if not options:
                break
            v = max(options, key=lambda ch: (ch.visits, ch.q(0.0)))
        target = v.node.id if v.node.id in ends else (v.finished[0].id if v.finished else None)
        return next((c for c in candidates if c.node == target), max(candidates, key=lambda c: c.score or 0.0))


def _priors(logprobs: Sequence[Sequence[float] | None]) -> list[float]:
    """Sibling priors from each step's mean token log-probability (length-normalised, so long
    steps are not penalised), renormalised over the siblings."""
    means = [sum(lp) / len(lp) if lp else -1e9 for lp in logprobs]
    top = max(means)
    exps = [math.exp(m - top) for m in means]
    return [e / sum(exps) for e in exps]


def _walk(v: Vertex):
    yield v
    for ch in v.children:
        yield from _walk(ch)


def _reaches(v: Vertex, ends: set[int]) -> bool:
    return v.node.id in ends or v.finished is not None or any(_reaches(ch, ends) for ch in v.children)
