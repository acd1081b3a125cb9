"""Compute budgets as hard limits.

A `Budget` limits one ledger. An `Allowance` applies a problem's budget to its ledger and the
run's budget to the run's ledger at once. Before a request goes out it reserves what the
request may spend (n x max_tokens, or one verifier call) from what is left after every
in-flight reservation at both levels, shrinking the request to fit; when the request returns
its real usage is recorded and the reservation released. So concurrent requests never
together exceed a budget, whatever the strategy or the number of problems.

A strategy that needs a budget of its own (a search's token or verifier-call limit) asks for a
scoped allowance (`Allowance.scoped`): one more level, on a ledger of its own, held by the same
reservations, so its limit is as hard as the problem's. Only the wall deadline's own timer
means "deadline" (`DeadlineReached`); a timeout raised by the work itself is that work's error.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Awaitable, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .ledger import Ledger

T = TypeVar("T")


class DeadlineReached(Exception):
    """The wall-time budget ran out while a request or verifier call was in flight (it was
    cancelled). Any other timeout is not this: it is the failing call's own error."""


class Budget(BaseModel):
    """Limits on one ledger; None = unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generated_tokens: int | None = Field(None, ge=1)
    verifier_calls: int | None = Field(None, ge=1)
    wall_s: float | None = Field(None, gt=0)

    def exhausted(self, ledger: Ledger, reserved: bool = True) -> bool:
        """Spent (or, with `reserved`, held by in-flight requests) up to a limit, or past the deadline."""
        held_tokens, held_calls = (ledger.reserved_tokens, ledger.reserved_calls) if reserved else (0, 0)
        return (
            (self.generated_tokens is not None and ledger.generated_tokens + held_tokens >= self.generated_tokens)
            or (self.verifier_calls is not None and ledger.verifier_calls + held_calls >= self.verifier_calls)
            or (self.wall_s is not None and ledger.wall_s >= self.wall_s)
        )

    def tokens_left(self, ledger: Ledger) -> int | None:
        if self.generated_tokens is None:
            return None
        return max(0, self.generated_tokens - ledger.generated_tokens - ledger.reserved_tokens)

    def calls_left(self, ledger: Ledger) -> int | None:
        if self.verifier_calls is None:
            return None
        return max(0, self.verifier_calls - ledger.verifier_calls - ledger.reserved_calls)

    def deadline(self, ledger: Ledger) -> float | None:
        """The monotonic time at which the wall budget runs out."""
        return None if self.wall_s is None else ledger.started + self.wall_s


@dataclass
class Reservation:
    """What one request holds on each ledger until it returns; release is idempotent."""

    ledgers: tuple[Ledger, ...]
    tokens: int = 0
    calls: int = 0

    def __post_init__(self) -> None:
        for ledger in self.ledgers:
            ledger.reserved_tokens += self.tokens
            ledger.reserved_calls += self.calls

    def release(self) -> None:
        for ledger in self.ledgers:
            ledger.reserved_tokens -= self.tokens
            ledger.reserved_calls -= self.calls
        self.tokens = self.calls = 0


@dataclass(frozen=True)
class Grant:
    """A request cut to fit: `samples` of the n asked for run with `max_tokens` each (the rest
    get nothing); `reservation` holds samples x max_tokens until the request returns."""

    samples: int
    max_tokens: int
    reservation: Reservation


class Allowance:
    """Budgets on ledgers, checked together: the problem's on its ledger, the run's on the
    run's ledger, and any scopes a strategy asked for on ledgers of their own."""

    def __init__(self, budget: Budget, ledger: Ledger, global_budget: Budget | None = None) -> None:
        self.levels: list[tuple[Budget, Ledger]] = [(budget, ledger)]
        if ledger.parent is not None and global_budget is not None:
            self.levels.append((global_budget, ledger.parent))

    def scoped(self, budget: Budget, ledger: Ledger) -> "Allowance":
        """This allowance with `budget` on `ledger` (which records into one of these levels'
        ledgers) checked as well: a limit of a part of the work, as hard as the others."""
        inner = Allowance.__new__(Allowance)
        inner.levels = [(budget, ledger), *self.levels]
        return inner

    @property
    def _ledgers(self) -> tuple[Ledger, ...]:
        return tuple(ledger for _, ledger in self.levels)

    def exhausted(self) -> bool:
        return any(b.exhausted(led) for b, led in self.levels)

    def tokens_left(self) -> int | None:
        left = [x for x in (b.tokens_left(led) for b, led in self.levels) if x is not None]
        return min(left) if left else None

    def deadline(self) -> float | None:
        times = [t for t in (b.deadline(led) for b, led in self.levels) if t is not None]
        return min(times) if times else None

    def seconds_left(self) -> float | None:
        deadline = self.deadline()
        return None if deadline is None else deadline - time.monotonic()

    async def within_deadline(self, work: Awaitable[T]) -> T:
        """`work`, cancelled at the wall-time deadline (DeadlineReached). A TimeoutError that
        `work` raises itself goes up as it is."""
        seconds = self.seconds_left()
        if seconds is None:
            return await work
        timer = asyncio.timeout(max(0.0, seconds))
        try:
            async with timer:
                return await work
        except TimeoutError:
            if timer.expired():
                raise DeadlineReached from None
            raise

    def reserve_tokens(self, n: int, max_tokens: int) -> Grant:
        """Reserve n x max_tokens, or as much as is left: each of the n samples gets
        left // n tokens, and when fewer than n tokens are left only that many samples get one."""
        left = self.tokens_left()
        if (seconds := self.seconds_left()) is not None and seconds <= 0:
            left = 0
        if left is None:
            samples, per = n, max_tokens
        elif left >= n:
            samples, per = n, min(max_tokens, left // n)
        else:
            samples, per = left, 1
        return Grant(samples, per if samples else 0, Reservation(self._ledgers, tokens=samples * per))

    def calls_left(self) -> int | None:
        left = [x for x in (b.calls_left(led) for b, led in self.levels) if x is not None]
        return min(left) if left else None

    def hold(self, n: int, max_tokens: int, calls: int, ledger: Ledger) -> tuple["Allowance", int, Reservation] | None:
        """Hold, up front, n samples' tokens (each min(max_tokens, left // n)) and `calls`
        verifier calls, for work that must not start unless all of it can be paid for (an
        expansion whose k children are all scored). None when they cannot. The returned
        allowance spends only from the hold, recorded on `ledger` (which feeds these levels),
        under the same wall deadline; the Reservation keeps the hold on every level until it
        is released."""
        tokens_left, calls_left = self.tokens_left(), self.calls_left()
        if (seconds := self.seconds_left()) is not None and seconds <= 0:
            return None
        per = max_tokens if tokens_left is None else min(max_tokens, tokens_left // n)
        if per < 1 or (calls_left is not None and calls_left < calls):
            return None
        held = Reservation(self._ledgers, tokens=n * per, calls=calls)
        inner = Allowance.__new__(Allowance)
        pot = Budget.model_construct(generated_tokens=n * per, verifier_calls=calls, wall_s=None)  # 0 calls: none
        inner.levels = [(pot, ledger), *((Budget(wall_s=b.wall_s), led) for b, led in self.levels if b.wall_s is not None)]
        return inner, per, held

    def reserve_call(self) -> Reservation | None:
        """One verifier call, or None when the verifier budget (or the wall time) is spent."""
        left = self.calls_left()
        if (left is not None and left < 1) or ((seconds := self.seconds_left()) is not None and seconds <= 0):
            return None
        return Reservation(self._ledgers, calls=1)
