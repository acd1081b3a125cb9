"""Diverse Verifier Tree Search (search-and-learn): N/M independent subtrees.

Each subtree samples M next steps, keeps the PRM's argmax and goes on; subtrees never compete,
so diversity survives where beam search would collapse onto one prefix. A subtree ends on
EOS, an empty step or a boxed answer. All N/M finals are candidates.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from pydantic import Field, model_validator

from ..runtime.context import Context
from ..records.result import Result
from ..records.trace import Node
from ..verifiers.voting import select
from .base import StrategyConfig


class DVTSConfig(StrategyConfig):
    n: int = Field(8, ge=1)
    width: int = Field(4, ge=1)
    max_steps: int = Field(40, ge=1)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    step_tokens: int = Field(256, ge=1)
    final_tokens: int = Field(1024, ge=1)
    aggregate: str = "last"
    selection: str = "weighted"

    @model_validator(mode="after")
    def _divisible(self) -> "DVTSConfig":
        if self.n % self.width:
            raise ValueError(f"n ({self.n}) must be a multiple of width ({self.width})")
        return self


class DVTS:
    name: ClassVar[str] = "dvts"
    Config: ClassVar[type[StrategyConfig]] = DVTSConfig
    needs_scorer: ClassVar[bool] = True

    def __init__(self, config: DVTSConfig) -> None:
        self.config = config

    async def run(self, ctx: Context) -> Result:
        finals = await asyncio.gather(*(self._subtree(ctx, i) for i in range(self.config.n // self.config.width)))
        candidates = [ctx.candidate(node, score) for node, score in finals]
        return ctx.result(self.name, select(candidates, self.config.selection), candidates, {"subtrees": len(finals)})

    async def _subtree(self, ctx: Context, index: int) -> tuple[Node, float]:
        cfg = self.config
        node, score = ctx.tree.root, 0.0
        for step in range(cfg.max_steps):
            last = step == cfg.max_steps - 1 or ctx.exhausted()
            sampling = ctx.step_sampling(cfg.width, cfg.temperature, cfg.top_p, cfg.step_tokens, cfg.final_tokens, last)
            node, score = max(await ctx.expand(node, sampling, cfg.aggregate), key=lambda x: x[1])
            ctx.tree.set(node, subtree=index)
            if last or ctx.done(node) or "\\boxed" in node.step:
                break
        return node, score
