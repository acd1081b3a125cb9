"""Compute-optimal: a first wave of samples says how hard the problem is, and a fitted table
says which strategy spends a budget best at that difficulty (Snell et al. 2024).

The table (`policy:`, a JSON file `ponder sweep` writes) holds the wave's strategy, the cells
that may be chosen, and per budget (generated tokens per problem) the cell for each predicted
level: the size of the wave's largest group of agreeing answers, 0 .. w. The wave is a sub-run
that spends from the problem's budgets like the chosen cell after it, so its tokens count in the
same ledger; the cell `wave` answers with the wave's own vote and spends nothing more. A chosen
best-of-n majority cell of the wave's own setting with n > w keeps the wave's samples and draws
only n - w more (the vote is over all n), as the sweep's fit assumed.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..records.result import Result
from ..runtime.contract import StrategyContext
from ..verifiers.voting import select_async
from .base import Configured, StrategyConfig, StrategySpec, chosen_candidate, vote_share

WAVE = "wave"  # the choice that keeps the wave's own answer


class Allocation(BaseModel):
    """At `tokens` per problem: the cell for each predicted level, and for a level unseen in fitting."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: float = Field(gt=0)
    choice: dict[int, str]
    default: str


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    wave: StrategySpec
    cells: dict[str, StrategySpec]
    budgets: list[Allocation]

    @model_validator(mode="after")
    def _known_cells(self) -> "Policy":
        for a in self.budgets:
            for name in [*a.choice.values(), a.default]:
                if name != WAVE and name not in self.cells:
                    raise ValueError(f"budget {a.tokens}: chooses {name!r}, which is not among the cells")
        return self

    def allocation(self, tokens: float | None) -> Allocation:
        """The fitted budget closest to `tokens` from below (the spend it was fitted to stay
        within); None: the largest."""
        fitting = [a for a in self.budgets if tokens is None or a.tokens <= tokens]
        if not fitting:
            raise ValueError(f"budget {tokens}: below every fitted budget ({', '.join(str(a.tokens) for a in self.budgets)})")
        return max(fitting, key=lambda a: a.tokens)


def extra_samples(wave: StrategySpec, cell: StrategySpec) -> int | None:
    """How many samples `cell` adds to the wave when it is best-of-n majority at the wave's
    setting with a larger n (its vote then counts the wave's samples too); None otherwise."""
    if wave.name != "best_of_n" or cell.name != "best_of_n":
        return None
    a, b = wave.build().config.model_dump(), cell.build().config.model_dump()
    if a.pop("n") >= (n := b.pop("n")) or a != b or b["selection"] != "majority":
        return None
    return n - wave.build().config.n  # type: ignore[attr-defined]


@lru_cache(maxsize=16)
def read_policy(path: str) -> Policy:
    try:
        return Policy.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    except OSError as e:
        raise ValueError(f"policy {path}: cannot read it ({e.strerror})") from None
    except (json.JSONDecodeError, ValidationError) as e:
        raise ValueError(f"policy {path}: not a compute-optimal table ({str(e).splitlines()[0]})") from None


# Without a fitted table: four samples; where they all agree their answer stands, elsewhere
# twelve more at the same setting and a vote over all sixteen.
UNFITTED = Policy(
    wave=StrategySpec(name="best_of_n", config={"n": 4}),
    cells={"more": StrategySpec(name="best_of_n", config={"n": 16})},
    budgets=[Allocation(tokens=1, choice={4: WAVE}, default="more")],
)


class ComputeOptimalConfig(StrategyConfig):
    policy: str | None = None  # the fitted table (SWEEP_DIR/policy.json); None: 4 samples, 12 more where they disagree
    budget: float | None = Field(None, gt=0)  # generated tokens per problem, the wave included; None: the largest fitted

    @field_validator("policy")
    @classmethod
    def _readable(cls, path: str | None) -> str | None:
        if path is not None:
            read_policy(path)
        return path

    @model_validator(mode="after")
    def _fitted(self) -> "ComputeOptimalConfig":
        self.table().allocation(self.budget)
        return self

    def table(self) -> Policy:
        return UNFITTED if self.policy is None else read_policy(self.policy)


class ComputeOptimal(Configured[ComputeOptimalConfig], name="compute_optimal"):
    def __init__(self, config: ComputeOptimalConfig) -> None:
        super().__init__(config)
        policy = config.table()
        self.allocation = policy.allocation(config.budget)
        self.wave = policy.wave.build()
        chosen = {*self.allocation.choice.values(), self.allocation.default} - {WAVE}
        self.cells = {name: policy.cells[name].build() for name in sorted(chosen)}
        self.extra = {name: extra_samples(policy.wave, policy.cells[name]) for name in self.cells}
        # per instance: a chosen cell that searches with a scorer needs one
        self.needs_scorer = any(getattr(s, "needs_scorer", False) for s in self.cells.values())  # type: ignore[misc]

    async def run(self, ctx: StrategyContext) -> Result:
        wave = await ctx.run(self.wave, seed=0)
        share = await vote_share(wave.candidates, wave.answer)
        level = round(share * len(wave.candidates))
        name = self.allocation.choice.get(level, self.allocation.default)
        names = [WAVE, *self.cells]
        metrics = {"level": level, "cell": names.index(name), "wave_tokens": wave.ledger.generated_tokens}
        if name == WAVE or ctx.exhausted():
            return ctx.result(self.name, chosen_candidate(wave), [*wave.candidates], metrics)
        extra = self.extra[name]
        if extra is None:
            result = await ctx.run(self.cells[name], seed=1)
            chosen = chosen_candidate(result)
            return ctx.result(self.name, chosen, [*result.candidates] or [chosen], metrics)
        more = await ctx.run("best_of_n", seed=1, **{**self.cells[name].config.model_dump(), "n": extra})
        candidates = [*wave.candidates, *more.candidates]
        return ctx.result(self.name, await select_async(candidates, "majority"), candidates, metrics)
