"""Cascade: cheap strategies first, dearer ones only where they are not confident.

Stages run in order, each a sub-run on the problem; the cascade stops at the first stage
whose confidence reaches `threshold` and answers with it (the last stage answers whatever
its confidence). Confidence is `vote` (the share of the stage's candidates agreeing with
its answer) or `score` (its chosen candidate's score from the scorer). Easy problems stop
at a few samples and hard ones get the search: compute-optimal allocation by difficulty
(Snell et al. 2024), difficulty-adaptive reasoning (DiffAdapt). Every stage spends from the
problem's budgets; a spent budget ends the cascade with the last stage that ran.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ..records.result import Result
from ..runtime.contract import StrategyContext
from .base import Aggregate, Configured, StrategyConfig, StrategySpec, chosen_candidate, chosen_score, vote_share


def _default_stages() -> list[StrategySpec]:
    return [StrategySpec(name="best_of_n", config={"n": 4}), StrategySpec(name="best_of_n", config={"n": 16})]


class CascadeConfig(StrategyConfig):
    stages: list[StrategySpec] = Field(default_factory=_default_stages)
    threshold: float = Field(0.75, ge=0, le=1)
    confidence: Literal["vote", "score"] = "vote"
    aggregate: Aggregate = "last"  # step scores -> the chosen candidate's score (`score`)

    @field_validator("stages")
    @classmethod
    def _some(cls, stages: list[StrategySpec]) -> list[StrategySpec]:
        if not stages:
            raise ValueError("a cascade needs at least one stage")
        return stages


class Cascade(Configured[CascadeConfig], name="cascade"):
    def __init__(self, config: CascadeConfig) -> None:
        super().__init__(config)
        self.stages = [s.build() for s in config.stages]
        # per instance: a stage that searches with a scorer, or confidence read from one
        self.needs_scorer = config.confidence == "score" or any(getattr(s, "needs_scorer", False) for s in self.stages)  # type: ignore[misc]

    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        metrics: dict[str, float] = {}
        for i, stage in enumerate(self.stages, start=1):
            result = await ctx.run(stage, seed=i)
            confidence = await self._confidence(ctx, result)
            metrics.update({"stage": i, "confidence": round(confidence, 4), f"stage{i}_tokens": result.ledger.generated_tokens})
            if confidence >= cfg.threshold or ctx.exhausted():
                break
        chosen = chosen_candidate(result)
        return ctx.result(self.name, chosen, [*result.candidates] or [chosen], metrics)

    async def _confidence(self, ctx: StrategyContext, result: Result) -> float:
        if self.config.confidence == "vote":
            return await vote_share(result.candidates, result.answer)
        score = await chosen_score(ctx, result, self.config.aggregate)
        return 0.0 if score is None else score
