"""Vote: any strategy run k times on the problem, concurrently, one answer voted from theirs.

Self-consistency (Wang et al. 2023) lifted from samples to strategies: each run is a sub-run
with its own seed stream (so no two runs repeat each other's samples) in its own subtree,
all spending from the problem's budgets. `majority` counts equivalent answers; `weighted`
adds up each run's score for its answer (the score its strategy gave the chosen candidate,
or the scorer's when it gave none). A run the budget left without an answer has no vote.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field

from ..records.result import Result
from ..runtime.contract import StrategyContext
from ..verifiers.voting import select_async
from .base import Aggregate, Configured, StrategyConfig, StrategySpec, chosen_candidate, chosen_score, together, vote_share


class VoteConfig(StrategyConfig):
    strategy: StrategySpec = Field(default_factory=lambda: StrategySpec(name="best_of_n", config={"n": 1}))
    k: int = Field(5, ge=1)  # runs
    selection: Literal["majority", "weighted"] = "majority"
    aggregate: Aggregate = "last"  # how step scores make a run's score (weighted, when the scorer gives it)


class Vote(Configured[VoteConfig], name="vote"):
    def __init__(self, config: VoteConfig) -> None:
        super().__init__(config)
        self.sub = config.strategy.build()
        # per instance: whether a scorer is needed depends on the strategy being voted on
        self.needs_scorer = bool(getattr(self.sub, "needs_scorer", False))  # type: ignore[misc]

    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        runs = await together([ctx.run(self.sub, seed=i) for i in range(cfg.k)])
        candidates = []
        for r in runs:
            pick = chosen_candidate(r)
            if cfg.selection == "weighted":
                pick = replace(pick, score=await chosen_score(ctx, r, cfg.aggregate))
            candidates.append(pick)
        chosen = await select_async(candidates, cfg.selection)
        metrics = {"runs": len(runs), "share": round(await vote_share(candidates, chosen.answer), 4)}
        return ctx.result(self.name, chosen, candidates, metrics)
