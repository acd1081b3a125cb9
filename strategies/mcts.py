"""Step-level Monte Carlo tree search (AlphaMath Almost Zero, Chen et al. 2024; rStar).

A vertex is a partial trajectory (a node of the trace, continued token-exactly). One
simulation: select a leaf by PUCT (or UCT) from the root, expand it with k one-step children
in one request, evaluate every child by the step scorer (or by a greedy rollout to the end,
scored), and back each child's value up to the root. W simulations are in flight at once:
a selected path carries a virtual loss (an unfinished visit of value 0) until its backup, and
a leaf being expanded cannot be selected again, so concurrent simulations spread over
different leaves and the engine batch stays full. Terminal trajectories (EOS, length cap,
empty step, last allowed depth, finished rollouts) are the candidates. Budgets: simulations,
generated tokens and verifier calls, reserved before a request starts, so none is overshot.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal, Sequence

from pydantic import Field

from ..records.result import Candidate, Result
from ..records.trace import Node, split_steps
from ..runtime.context import Context
from ..verifiers.voting import select_async
from .base import Aggregate, Configured, StrategyConfig


class MCTSConfig(StrategyConfig):
    simulations: int = Field(32, ge=1)  # expansions in all
    k: int = Field(4, ge=1)  # children per expansion, one request
    c: float = Field(1.0, ge=0)  # exploration constant
    rule: Literal["puct", "uct"] = "puct"
    prior: Literal["probability", "uniform"] = "probability"  # PUCT prior of a child step
    parallel: int = Field(4, ge=1)  # W simulations in flight
    virtual_loss: float = Field(1.0, ge=0)  # visits of value 0 a path carries while in flight
    rollout: bool = False  # evaluate a child by a greedy rollout to the end, scored
    answer: Literal["visits", "value", "vote"] = "visits"
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    step_tokens: int = Field(256, ge=1)
    final_tokens: int = Field(1024, ge=1)
    max_depth: int = Field(40, ge=1)
    max_tokens: int | None = Field(None, ge=1)  # generated-token budget of the search
    max_verifier_calls: int | None = Field(None, ge=1)
    aggregate: Aggregate = "last"


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


class Reserve:
    """A budget on one ledger counter, with grants held by requests in flight."""

    def __init__(self, limit: int | None, used) -> None:
        self.limit, self.used, self.held = limit, used, 0

    def take(self, want: int) -> int:
        grant = want if self.limit is None else max(0, min(want, self.limit - self.used() - self.held))
        self.held += grant
        return grant

    def settle(self, grant: int) -> None:
        self.held -= grant


class MCTS(Configured[MCTSConfig]):
    name: ClassVar[str] = "mcts"
    Config: ClassVar[type[StrategyConfig]] = MCTSConfig
    needs_scorer: ClassVar[bool] = True

    async def run(self, ctx: Context) -> Result:
        cfg = self.config
        tokens = Reserve(cfg.max_tokens, lambda: ctx.ledger.generated_tokens)
        calls = Reserve(cfg.max_verifier_calls, lambda: ctx.ledger.verifier_calls)
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
                    grant = tokens.take(cfg.k * self._cap(path[-1]))
                    tokens.settle(grant % cfg.k)  # each child gets the same cap
                    granted_calls = calls.take(cfg.k)
                    if grant < cfg.k or granted_calls < cfg.k:
                        tokens.settle(grant - grant % cfg.k)
                        calls.settle(granted_calls)
                        break
                    for v in path:
                        v.virtual += 1
                    path[-1].busy = True
                    ctx.tree.set(path[-1].node, expanded=sims, inflight=len(inflight) + 1)
                    sims += 1
                    inflight[asyncio.create_task(self._expand(ctx, path[-1], grant // cfg.k, tokens, calls))] = path
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
            node = await self._complete(ctx, max(_walk(root), key=lambda v: (round(v.q(0.0), 9), v.node.depth)).node, tokens)
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

    async def _expand(self, ctx: Context, leaf: Vertex, cap: int, tokens: Reserve, calls: Reserve) -> list[tuple[Vertex, float]]:
        """k children of `leaf` in one request, each evaluated; grants settle as requests return."""
        cfg = self.config
        last = leaf.node.depth + 1 >= cfg.max_depth
        sampling = ctx.step_sampling(cfg.k, cfg.temperature, cfg.top_p, cfg.step_tokens, cfg.final_tokens, last)
        sampling = replace(sampling, max_tokens=min(sampling.max_tokens, cap), logprobs=0 if cfg.prior == "probability" else None)
        try:
            pairs = await ctx.extend_with(leaf.node, sampling)
        finally:
            tokens.settle(cap * cfg.k)
        priors = _priors([c.token_logprobs for _, c in pairs]) if cfg.prior == "probability" else [1.0 / len(pairs)] * len(pairs)
        children = [Vertex(node, prior, terminal=ctx.done(node) or last) for (node, _), prior in zip(pairs, priors)]
        try:
            values = await asyncio.gather(*(self._evaluate(ctx, ch, tokens) for ch in children))
        finally:
            calls.settle(cfg.k)
        for ch, value in zip(children, values):
            ch.visits, ch.total = 1, value
            ctx.tree.set(ch.node, prior=round(ch.prior, 4), score=value)
        leaf.children = children
        return list(zip(children, values))

    async def _evaluate(self, ctx: Context, child: Vertex, tokens: Reserve) -> float:
        cfg = self.config
        grant = 0 if child.terminal or not cfg.rollout else tokens.take(cfg.final_tokens)
        if not grant:
            return await ctx.score(child.node, cfg.aggregate)
        try:
            (tip,) = await ctx.extend(child.node, ctx.sampling(temperature=0.0, max_tokens=grant), rollout=True)
        finally:
            tokens.settle(grant)
        value = await ctx.score(tip, cfg.aggregate, ctx.tree.steps(child.node) + split_steps(tip.step, ctx.delimiter))
        if tip.finish == "eos":
            child.finished = (tip, value)
        return value

    async def _complete(self, ctx: Context, node: Node, tokens: Reserve) -> Node:
        """The best partial trajectory, finished greedily with what the token budget has left."""
        grant = tokens.take(self.config.final_tokens)
        try:
            if not grant or ctx.exhausted():
                return node
            (tip,) = await ctx.extend(node, ctx.sampling(temperature=0.0, max_tokens=grant), completion=True)
            return tip
        finally:
            tokens.settle(grant)

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
