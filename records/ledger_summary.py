"""What one problem (or a whole run) spent: the ledger's frozen totals."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class LedgerSummary:
    """What one problem (or a whole run) spent. Aborted tokens are included in generated.

    `requests` .. `aborted_tokens` are the policy's engine requests; `verifier_*` the engine
    requests verifier calls made (`verifier_tokens`: the prompt tokens they sent). The
    `engine_*` properties add both: what the engines were asked for in all."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    aborted_requests: int = 0
    aborted_tokens: int = 0
    verifier_calls: int = 0
    verifier_requests: int = 0
    verifier_tokens: int = 0
    verifier_cached_tokens: int = 0
    verifier_generated_tokens: int = 0
    thinking_tokens: int = 0  # of generated_tokens: inside a thinking block
    answer_tokens: int = 0  # of generated_tokens: outside it (split only where a thinking block is configured)
    probe_requests: int = 0  # of requests: side requests probing a prefix for its answer
    probe_tokens: int = 0  # of generated_tokens: what the probes generated
    wall_s: float = 0.0

    @property
    def engine_requests(self) -> int:
        return self.requests + self.verifier_requests

    @property
    def engine_prompt_tokens(self) -> int:
        return self.prompt_tokens + self.verifier_tokens

    @property
    def engine_generated_tokens(self) -> int:
        return self.generated_tokens + self.verifier_generated_tokens

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
