from collections import Counter
from typing import ClassVar

from pydantic import Field

import ponder
from ponder import Result, StrategyConfig, StrategyContext


class UntilAgreeConfig(StrategyConfig):
    batch: int = Field(4, ge=1)  # samples per round
    rounds: int = Field(3, ge=1)  # at most
    agree: float = Field(0.5, gt=0, le=1)  # stop once this share of the samples agree
    max_tokens: int = Field(256, ge=1)


@ponder.register_strategy
class UntilAgree:
    """Sample in rounds until enough answers agree; answer with the most common one."""

    name: ClassVar[str] = "until_agree"
    Config: ClassVar[type[StrategyConfig]] = UntilAgreeConfig

    def __init__(self, config: UntilAgreeConfig) -> None:
        self.config = config

    async def run(self, ctx: StrategyContext) -> Result:
        cfg, nodes = self.config, []
        for _ in range(cfg.rounds):
            sampling = ctx.sampling(n=cfg.batch, temperature=0.8, max_tokens=cfg.max_tokens)
            nodes += await ctx.extend(ctx.tree.root, sampling)  # budgeted, one request per sample
            candidates = [ctx.candidate(node) for node in nodes]
            answer, count = (Counter(c.answer for c in candidates if c.answer).most_common(1) or [("", 0)])[0]
            if count >= cfg.agree * len(candidates) or ctx.exhausted():
                break
        chosen = next(c for c in candidates if c.answer == answer)
        return ctx.result(self.name, chosen, candidates, {"samples": len(nodes)})


if __name__ == "__main__":
    print(ponder.solve("What is 12 + 7?", "until_agree", batch=4).answer)
