"""Compute budgets: a strategy asks `exhausted()` between steps and stops cleanly."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .ledger import Ledger


class Budget(BaseModel):
    """Limits on one ledger; None = unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generated_tokens: int | None = Field(None, ge=1)
    verifier_calls: int | None = Field(None, ge=1)
    wall_s: float | None = Field(None, gt=0)

    def exhausted(self, ledger: Ledger) -> bool:
        return (
            (self.generated_tokens is not None and ledger.generated_tokens >= self.generated_tokens)
            or (self.verifier_calls is not None and ledger.verifier_calls >= self.verifier_calls)
            or (self.wall_s is not None and ledger.wall_s >= self.wall_s)
        )

    def tokens_left(self, ledger: Ledger) -> int | None:
        if self.generated_tokens is None:
            return None
        return max(0, self.generated_tokens - ledger.generated_tokens)
