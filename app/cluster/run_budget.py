"""A run-wide budget kept by the driver of a run whose problems are solved elsewhere (Ray workers).

Workers cannot share one ledger, so the driver hands each problem it sends out a lease: a
budget of its own (the problem's Solver takes it as its run budget) cut from what the run has
left after what it spent and what the leases out hold. A problem's lease is an even share of
that among the problems that could still be sent alongside it, at least one token (or call)
while any is left; what a problem does not spend comes back when its result does. So all
workers together stay within the run's budget, and no problem starts once it is spent. A wall
time budget is one deadline, carried by every lease.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ...records.ledger_summary import LedgerSummary
from ...runtime.budget import Budget


@dataclass(frozen=True)
class Lease:
    """What one problem was granted: its `budget`, and the tokens and calls it holds till it returns."""

    budget: Budget
    tokens: int = 0
    calls: int = 0


class RunBudget:
    def __init__(self, budget: Budget, slots: int) -> None:
        """`slots`: how many problems may be out at once (a share is split that many ways at most)."""
        self.budget, self.slots = budget, slots
        self.spent = LedgerSummary()  # what the problems that came back spent
        self.used_tokens = self.used_calls = 0  # counted against the budget: spent, and what lost problems held
        self.out = 0
        self.held_tokens = self.held_calls = 0
        self.started = time.monotonic()

    def grant(self) -> Lease | None:
        """A lease for one more problem; None when the run's budget is spent or held by the
        problems out (wait for one of them, or, with none out, stop sending)."""
        free = max(1, self.slots - self.out)
        tokens = self._share(self.budget.generated_tokens, self.used_tokens, self.held_tokens, free)
        calls = self._share(self.budget.verifier_calls, self.used_calls, self.held_calls, free)
        seconds = None if self.budget.wall_s is None else self.budget.wall_s - (time.monotonic() - self.started)
        if tokens == 0 or calls == 0 or (seconds is not None and seconds <= 0):
            return None
        self.out += 1
        self.held_tokens += tokens or 0
        self.held_calls += calls or 0
        return Lease(Budget(generated_tokens=tokens, verifier_calls=calls, wall_s=seconds), tokens or 0, calls or 0)

    @staticmethod
    def _share(limit: int | None, spent: int, held: int, free: int) -> int | None:
        if limit is None:
            return None
        left = limit - spent - held
        return max(1, left // free) if left > 0 else 0

    def settle(self, lease: Lease, spent: LedgerSummary | None) -> None:
        """A problem is back: what it spent counts, the rest of its lease is free again.
        `spent` None: its worker died under it, having spent an unknown part of its lease,
        so all of it counts (a budget is never passed for want of a count)."""
        self.out -= 1
        self.held_tokens -= lease.tokens
        self.held_calls -= lease.calls
        if spent is None:
            self.used_tokens += lease.tokens
            self.used_calls += lease.calls
            return
        self.spent = self.spent + spent
        self.used_tokens += spent.generated_tokens
        self.used_calls += spent.verifier_calls
