"""Where the compute went: one ledger per problem, summed into a global one."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

from ..backends.base import Usage


@dataclass(frozen=True)
class LedgerSummary:
    """What one problem (or a whole run) spent. Aborted tokens are included in generated."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    aborted_requests: int = 0
    aborted_tokens: int = 0
    verifier_calls: int = 0
    verifier_tokens: int = 0
    wall_s: float = 0.0

    @property
    def computed_prompt_tokens(self) -> int:
        return self.prompt_tokens - self.cached_tokens

    @property
    def cache_hit_rate(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    def __add__(self, other: LedgerSummary) -> LedgerSummary:
        return LedgerSummary(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, float]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["cache_hit_rate"] = round(self.cache_hit_rate, 4)
        return d


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
