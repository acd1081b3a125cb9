"""Helpers every built-in strategy shares, and the built-in strategies' names.

A strategy is a small class with a frozen pydantic `Config` and `async run(ctx) -> Result`.
It talks to the engine and verifiers only through its context (runtime/contract.py). Built-ins register here the
way users' strategies do (runtime.strategy.register_strategy), as "module:Class" strings, so
listing strategies or `ponder --help` never imports torch or vLLM.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Literal, Sequence, TypeVar, get_args, get_origin

from pydantic import Field, model_validator

from ..records.result import Candidate, Result
from ..records.trace import split_steps
from ..verifiers.answer import equivalent_async
from ..runtime.contract import StrategyContext, together
from ..runtime.strategy import (
    STRATEGIES, Strategy, StrategyConfig, StrategySpec, make_strategy, register_strategy, strategy_class,
)

Aggregate = Literal["last", "min", "mean", "prod"]  # step scores -> trajectory score (verifiers.voting.aggregate)
C = TypeVar("C", bound=StrategyConfig)

BUILT_IN: dict[str, str] = {
    "best_of_n": "best_of_n:BestOfN",
    "beam_search": "beam_search:BeamSearch",
    "dvts": "dvts:DVTS",
    "first_finish": "first_finish:FirstFinish",
    "particle_filtering": "particle_filtering:ParticleFiltering",
    "a_star": "a_star:AStar",
    "early_rejection": "early_rejection:EarlyRejection",
    "pdr": "pdr:PDR",
    "sr": "pdr:SequentialRefinement",
    "trim": "trim:Trim",
    "deepconf": "deepconf:DeepConf",
    "mcts": "mcts:MCTS",
    "adaptive_consistency": "adaptive_consistency:AdaptiveConsistency",
    "self_refine": "self_refine:SelfRefine",
    "vote": "vote:Vote",
    "cascade": "cascade:Cascade",
    "budget_forcing": "budget_forcing:BudgetForcing",
    "dynasor": "dynasor:Dynasor",
    "compute_optimal": "compute_optimal:ComputeOptimal",
}
for _name, _target in BUILT_IN.items():
    register_strategy(_name, f"{__package__}.{_target}")

__all__ = [
    "STRATEGIES", "Aggregate", "Configured", "StepConfig", "Strategy", "StrategyConfig", "StrategySpec", "WidthConfig",
    "chosen_candidate", "chosen_score", "make_strategy", "register_strategy", "strategy_class", "together", "vote_share",
]


class Configured(Generic[C]):
    """A strategy built from its frozen config (the only state it keeps between problems).

    The class header says the rest of what the registry reads: the config class is the type
    argument, the name and whether a step scorer is needed are keywords, as in
    `class BeamSearch(Configured[BeamSearchConfig], name="beam_search", needs_scorer=True)`."""

    name: ClassVar[str]
    Config: ClassVar[type[StrategyConfig]]
    needs_scorer: ClassVar[bool] = False

    def __init_subclass__(cls, name: str | None = None, needs_scorer: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            cls.name = name
        if needs_scorer is not None:
            cls.needs_scorer = needs_scorer
        # only the class's own bases: a subclass of a strategy (sr of pdr) keeps what it sets
        for base in cls.__dict__.get("__orig_bases__", ()):
            if get_origin(base) is Configured:
                (cls.Config,) = get_args(base)

    def __init__(self, config: C) -> None:
        self.config = config


class StepConfig(StrategyConfig):
    """Step-level strategies: how a step is sampled and how step scores make a trajectory's."""

    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    step_tokens: int = Field(256, ge=1)  # cap on one step
    final_tokens: int = Field(1024, ge=1)  # cap on the last allowed step (runs to EOS)
    aggregate: Aggregate = "last"  # step scores -> a trajectory's score (verifiers.voting.aggregate)


class WidthConfig(StepConfig):
    """Tree searches that keep n // width parents and expand each `width` times."""

    n: int = Field(8, ge=1)
    width: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _divisible(self) -> "WidthConfig":
        if self.n % self.width:
            raise ValueError(f"n ({self.n}) must be a multiple of width ({self.width})")
        return self


# -- strategies made of strategies ------------------------------------------------------------
def chosen_candidate(result: Result) -> Candidate:
    """The candidate a (sub-)result answered with."""
    return next((c for c in result.candidates if c.text == result.text), Candidate(text=result.text, answer=result.answer))


async def vote_share(candidates: Sequence[Candidate], answer: str) -> float:
    """The share of `candidates` whose answer is equivalent to `answer`: 1.0 when all agree,
    0 without an answer (a candidate the budget left empty agrees with nothing)."""
    if not answer or not candidates:
        return 0.0
    agree = [await equivalent_async(c.answer, answer) for c in candidates if c.answer]
    return sum(agree) / len(candidates)


async def chosen_score(ctx: StrategyContext, result: Result, how: Aggregate = "last") -> float | None:
    """The chosen candidate's score: the one its strategy gave, else the scorer's (one verifier
    call), else None without a scorer."""
    chosen = chosen_candidate(result)
    if chosen.score is not None:
        return chosen.score
    if ctx.scorer is None or chosen.node is None:
        return None
    node = ctx.tree.node(chosen.node)
    return await ctx.score(node, how, split_steps(node.text, ctx.delimiter))
