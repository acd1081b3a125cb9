"""Where the compute went: one ledger per problem, summed into a global one."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

from ..backends.base import Usage
from ..records.ledger_summary import LedgerSummary


@dataclass
class Ledger:
    """Mutable accumulator owned by one problem's context; `parent` (the run's global ledger)
    receives every record too, so global budgets see all problems.

    The policy's engine requests and the verifier's are kept apart (a generated-token budget
    limits the policy); both together are everything the engines were asked for. `reserved_*`
    is what in-flight requests hold against a budget (runtime/budget.py), never a spend."""

    parent: Ledger | None = None
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
    thinking_tokens: int = 0  # generated inside a thinking block (runtime/thinking.py)
    answer_tokens: int = 0  # generated outside it, where the prompt config names one
    probe_requests: int = 0  # side requests probing a prefix for its answer (counted in requests too)
    probe_tokens: int = 0  # what they generated (in generated_tokens too, in neither thinking nor answer)
    reserved_tokens: int = 0
    reserved_calls: int = 0
    started: float = field(default_factory=time.monotonic)

    def record(self, usage: Usage, aborted: bool = False, requests: int = 1) -> None:
        self.requests += requests
        self.prompt_tokens += usage.prompt_tokens
        self.cached_tokens += usage.cached_tokens
        self.generated_tokens += usage.generated_tokens
        if aborted:
            self.aborted_requests += requests
            self.aborted_tokens += usage.generated_tokens
        if self.parent is not None:
            self.parent.record(usage, aborted, requests)

    def record_verifier(self, calls: int = 1, tokens: int = 0, *, usage: Usage | None = None, requests: int = 0) -> None:
        """`calls` verifier calls that sent `requests` engine requests using `usage` (its prompt
        tokens are the verifier's tokens); without usage, `tokens` is what the verifier read."""
        self.verifier_calls += calls
        self.verifier_requests += requests
        self.verifier_tokens += usage.prompt_tokens if usage is not None else tokens
        if usage is not None:
            self.verifier_cached_tokens += usage.cached_tokens
            self.verifier_generated_tokens += usage.generated_tokens
        if self.parent is not None:
            self.parent.record_verifier(calls, tokens, usage=usage, requests=requests)

    def record_split(self, thinking: int = 0, answer: int = 0, probe: int = 0, probe_requests: int = 0) -> None:
        """Where recorded generated tokens went: thinking, answer, or probes."""
        self.thinking_tokens += thinking
        self.answer_tokens += answer
        self.probe_tokens += probe
        self.probe_requests += probe_requests
        if self.parent is not None:
            self.parent.record_split(thinking, answer, probe, probe_requests)

    @property
    def wall_s(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> LedgerSummary:
        names = [f.name for f in fields(LedgerSummary) if f.name != "wall_s"]
        return LedgerSummary(**{n: getattr(self, n) for n in names}, wall_s=round(self.wall_s, 3))
