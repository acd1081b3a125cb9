"""Early rejection with partial reward modelling (Cheshmi et al. 2025).

Beam search in which each of the M expansions of a beam first generates only τ tokens. The
PRM scores those unfinished steps; only the top N/M partial candidates are continued to the
step's end (sending the exact τ-token prefix back, so the engine reuses its KV blocks), and
the rest are dropped after τ tokens. The partial node and its continuation form one step.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from ..runtime.contract import StrategyContext
from ..records.result import Result
from ..records.trace import Node
from ..verifiers.voting import Selection, select_async
from .base import Configured, WidthConfig, together


class EarlyRejectionConfig(WidthConfig):
    n: int = Field(16, ge=1)  # N candidates per step; width = M expansions per kept beam
    tau: int = Field(64, ge=1)  # tokens generated before the partial PRM decision
    max_steps: int = Field(20, ge=1)
    selection: Selection = "best"

    @model_validator(mode="after")
    def _check(self) -> "EarlyRejectionConfig":
        if self.tau >= self.step_tokens:
            raise ValueError(f"tau ({self.tau}) must be below step_tokens ({self.step_tokens})")
        return self


class EarlyRejection(Configured[EarlyRejectionConfig], name="early_rejection", needs_scorer=True):
    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        keep = cfg.n // cfg.width
        beams: list[Node] = [ctx.tree.root]
        completed: list[Node] = []
        dropped = 0
        for step in range(cfg.max_steps):
            last = step == cfg.max_steps - 1 or ctx.exhausted()
            stop = () if last else (ctx.delimiter,)
            per_beam = cfg.n if step == 0 else cfg.width
            groups = await together(ctx.extend(b, ctx.sampling(
                n=per_beam, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.tau, stop=stop,
            )) for b in beams)
            partial = [c for g in groups for c in g]
            for c in partial:
                ctx.tree.set(c, partial=c.finish == "length")  # cut at τ: the step goes on
            scores = await together(ctx.score(c, cfg.aggregate) for c in partial)
            ranked = sorted(zip(partial, scores), key=lambda x: x[1], reverse=True)
            kept, rejected = ranked[:keep], ranked[keep:]
            dropped += len(rejected)
            for c, _ in rejected:
                ctx.tree.set(c, rejected=True)
            budget = cfg.final_tokens if last else cfg.step_tokens
            finished = await together(self._finish_step(ctx, c, budget - cfg.tau, stop) for c, _ in kept)
            beams = []
            for node in finished:
                (completed if ctx.done(node) or last else beams).append(node)
            if not beams or len(completed) >= keep:
                break
        pool = completed or beams
        scores = await together(ctx.score(n, cfg.aggregate) for n in pool)
        candidates = [ctx.candidate(n, s) for n, s in zip(pool, scores)]
        return ctx.result(self.name, await select_async(candidates, cfg.selection), candidates, {"rejected": dropped, "steps": step + 1})

    async def _finish_step(self, ctx: StrategyContext, node: Node, tokens: int, stop: tuple[str, ...]) -> Node:
        """Continue a τ-token partial step to its end from its exact ids."""
        if node.finish != "length":
            return node  # the step (or the whole answer) ended within τ tokens
        cfg = self.config
        (rest,) = await ctx.extend(node, ctx.sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=max(1, tokens), stop=stop))
        ctx.tree.set(rest, continuation=True)
        return rest
