"""Diverse Verifier Tree Search (search-and-learn): N/M independent subtrees.

Each subtree samples M next steps, keeps the PRM's argmax and goes on; subtrees never compete,
so diversity survives where beam search would collapse onto one prefix. A subtree ends on
EOS, an empty step or a boxed answer. As in search-and-learn, every subtree hands its last
expansion (the M siblings of its final step) to the final vote: N candidates in all.
"""

from __future__ import annotations

from pydantic import Field

from ..runtime.contract import StrategyContext
from ..records.result import Result
from ..records.trace import Node
from ..verifiers.voting import Selection, select_async
from .base import Configured, WidthConfig, together


class DVTSConfig(WidthConfig):  # n leaves in all, n // width subtrees
    max_steps: int = Field(40, ge=1)
    selection: Selection = "weighted"


class DVTS(Configured[DVTSConfig], name="dvts", needs_scorer=True):
    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        leaves = await together(self._subtree(ctx, i) for i in range(cfg.n // cfg.width))
        candidates = [ctx.candidate(node, score) for group in leaves for node, score in group]
        return ctx.result(self.name, await select_async(candidates, cfg.selection), candidates, {"subtrees": len(leaves)})

    async def _subtree(self, ctx: StrategyContext, index: int) -> list[tuple[Node, float]]:
        """The subtree's last M siblings, each with its score."""
        cfg = self.config
        node = ctx.tree.root
        for step in range(cfg.max_steps):
            last = step == cfg.max_steps - 1 or ctx.exhausted()
            sampling = ctx.step_sampling(cfg.width, cfg.temperature, cfg.top_p, cfg.step_tokens, cfg.final_tokens, last)
            siblings = await ctx.expand(node, sampling, cfg.aggregate)
            for child, _ in siblings:
                ctx.tree.set(child, subtree=index)
            node = max(siblings, key=lambda x: x[1])[0]
            if last or ctx.done(node) or "\\boxed" in node.step:
                break
        return siblings
