"""Best-of-N (Brown et al. 2024): n full samples from one prefix, one answer selected.

One generate call with n samples: the prompt is computed once and the other samples read it
from the prefix cache. `weighted` and `best` read the step scorer; with the confidence scorer
(verifiers/confidence.py) each sample is scored by the policy's own confidence over its whole
completion, a confidence-weighted vote with no verifier call. With a reference answer the
metrics include the unbiased pass@k = 1 - C(n-c, k)/C(n, k) for k = 1, 2, 4, ... <= n.
"""

from __future__ import annotations

from math import comb

from pydantic import Field

from ..runtime.contract import StrategyContext
from ..records.result import Result
from ..records.trace import split_steps
from ..verifiers.answer import equivalent_async
from ..verifiers.voting import Selection, select_async
from .base import Aggregate, Configured, StrategyConfig, together
from .thinking_budget import ThinkingBudget, sample_all


class BestOfNConfig(StrategyConfig):
    n: int = Field(8, ge=1)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1)
    selection: Selection = "majority"
    aggregate: Aggregate = "last"  # how step scores make a trajectory score (weighted / best)
    thinking_budget: ThinkingBudget | None = None  # each sample budget-forced (strategies/thinking_budget.py)


def pass_at_k(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


class BestOfN(Configured[BestOfNConfig], name="best_of_n"):
    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        n = 1 if cfg.selection == "first" and cfg.n == 1 else cfg.n
        sampling = ctx.sampling(n=n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens)
        nodes = [node for node, _ in await sample_all(ctx, ctx.tree.root, sampling, cfg.thinking_budget)]
        scored = cfg.selection in ("weighted", "best")
        if scored:
            scores = await together(ctx.score(node, cfg.aggregate, split_steps(node.text, ctx.delimiter)) for node in nodes)
        else:
            scores = [None] * len(nodes)
        candidates = [ctx.candidate(node, s) for node, s in zip(nodes, scores)]
        metrics: dict[str, float] = {}
        if ctx.problem.answer is not None:
            c = sum([await equivalent_async(x.answer, ctx.problem.answer) for x in candidates])
            k = 1
            while k <= len(candidates):
                metrics[f"pass@{k}"] = round(pass_at_k(len(candidates), c, k), 4)
                k *= 2
        return ctx.result(self.name, await select_async(candidates, cfg.selection), candidates, metrics)
