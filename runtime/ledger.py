"""Where the compute went: one ledger per problem, summed into a global one."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

from ..backends.base import Usage
from ..records.ledger_summary import LedgerSummary


@dataclass
class Ledger:
    """Mutable accumulator owned by one problem's context; `parent` (the run's global ledger)
    receives every record too, so global budgets see all problems."""

    parent: Ledger | None = None
    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    aborted_requests: int = 0
    aborted_tokens: int = 0
    verifier_calls: int = 0
    verifier_tokens: int = 0
    started: float = field(default_factory=time.monotonic)

    def record(self, usage: Usage, aborted: bool = False, requests: int = 1) -> None:
        self.requests += requests
        self.prompt_tokens += usage.prompt_tokens
        self.cached_tokens += usage.cached_tokens
        self.generated_tokens += usage.generated_tokens
        if aborted:
            self.aborted_requests += 1
            self.aborted_tokens += usage.generated_tokens
        if self.parent is not None:
            self.parent.record(usage, aborted, requests)

    def record_verifier(self, calls: int = 1, tokens: int = 0) -> None:
        self.verifier_calls += calls
        self.verifier_tokens += tokens
        if self.parent is not None:
            self.parent.record_verifier(calls, tokens)

    @property
    def wall_s(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> LedgerSummary:
        names = [f.name for f in fields(LedgerSummary) if f.name != "wall_s"]
        return LedgerSummary(**{n: getattr(self, n) for n in names}, wall_s=round(self.wall_s, 3))
