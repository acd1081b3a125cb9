"""Budget forcing (s1: simple test-time scaling, Muennighoff et al. 2025).

Each sample thinks at least `min_thinking_tokens` (an early end of thinking is replaced by
"Wait", up to `max_waits` times) and at most `max_thinking_tokens` (then thinking is closed
and an answer prefix forces the answer, under its own cap); strategies/thinking_budget.py
does the forcing, token-exactly. With n > 1 the samples run in parallel and the forced
answers are voted (the paper's parallel variant, majority voting).
"""

from __future__ import annotations

from pydantic import Field

from ..records.result import Result
from ..runtime.contract import StrategyContext
from ..verifiers.voting import select_async
from .base import Configured
from .thinking_budget import ThinkingBudget, sample_all


class BudgetForcingConfig(ThinkingBudget):
    n: int = Field(1, ge=1)
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(32768, ge=1)  # the whole sample: thinking, inserted text and answer


class BudgetForcing(Configured[BudgetForcingConfig], name="budget_forcing"):
    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        sampling = ctx.sampling(n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens)
        nodes = [node for node, _ in await sample_all(ctx, ctx.tree.root, sampling, cfg)]
        attrs = [ctx.tree.attrs(node) for node in nodes]
        candidates = [ctx.candidate(node) for node in nodes]
        metrics = {
            "waits": sum(a["waits"] for a in attrs), "thinking_cut": sum(a["thinking_cut"] for a in attrs),
            "thinking_tokens": sum(a["thinking_tokens"] for a in attrs),
        }
        return ctx.result(self.name, await select_async(candidates, "majority"), candidates, metrics)
