"""The Strategy contract: what the Solver runs for each problem.

Implementations live in strategies/ (one file each) and are found by name through
strategies.base; the runtime depends only on this protocol.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ..records.result import Result
from .context import Context


class StrategyConfig(BaseModel):
    """Base of every strategy's config: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@runtime_checkable
class Strategy(Protocol):
    name: ClassVar[str]
    Config: ClassVar[type[StrategyConfig]]
    config: StrategyConfig
    needs_scorer: ClassVar[bool]

    async def run(self, ctx: Context) -> Result: ...
