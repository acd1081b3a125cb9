"""The Strategy contract and the registry that finds strategies by name.

A strategy is a small class with a frozen pydantic `Config` and `async run(ctx) -> Result`.
It talks to the engine and verifiers only through the Context. Modules are imported on
first use, so listing strategies or `ponder --help` never imports torch or vLLM.
"""

from __future__ import annotations

import importlib
from typing import Generic, Literal, TypeVar

from pydantic import Field, ValidationError, model_validator

from ..runtime.strategy import Strategy, StrategyConfig

Aggregate = Literal["last", "min", "mean", "prod"]  # step scores -> trajectory score (verifiers.voting.aggregate)
C = TypeVar("C", bound=StrategyConfig)

REGISTRY: dict[str, str] = {
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
}

__all__ = [
    "REGISTRY", "Aggregate", "Configured", "Strategy", "StrategyConfig", "WidthConfig", "make_strategy", "strategy_class",
]


class Configured(Generic[C]):
    """A strategy built from its frozen config (the only state it keeps between problems)."""

    def __init__(self, config: C) -> None:
        self.config = config


class WidthConfig(StrategyConfig):
    """Tree searches that keep n // width parents and expand each `width` times."""

    n: int = Field(8, ge=1)
    width: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _divisible(self) -> "WidthConfig":
        if self.n % self.width:
            raise ValueError(f"n ({self.n}) must be a multiple of width ({self.width})")
        return self


def strategy_class(name: str) -> type[Strategy]:
    if name not in REGISTRY:
        raise ValueError(f"unknown strategy {name!r}: expected one of {', '.join(sorted(REGISTRY))}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def make_strategy(name: str, **config: object) -> Strategy:
    cls = strategy_class(name)
    try:
        return cls(cls.Config(**config))  # type: ignore[call-arg]
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"strategy {name}: field {field!r}: {first['msg']}") from None
