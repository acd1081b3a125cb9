"""Which endpoint each try of a request goes to, and how long to wait before it.

Every HTTP request of the OpenAI backend runs through one `Attempts` loop: a failed try
(refused connection, timeout, broken payload, 408/429/5xx) moves to the endpoint this request
has failed on least, after an exponential backoff. An endpoint that failed is avoided by
every request for a cool-off period (tried last, not skipped), so one dead server costs one
connect timeout, not one per new prompt. A `Retry-After` header is honoured: that endpoint
is not tried again before the time it names (capped).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import AsyncIterator, Callable, Sequence

RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class BackendError(RuntimeError):
    """A request that failed for good; the message is one line naming the endpoint(s)."""


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4
    backoff_s: float = 0.5
    cooloff_s: float = 30.0
    retry_after_max_s: float = 60.0


class Health:
    """Shared by all requests of one backend."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._failed_at: dict[str, float] = {}
        self._not_before: dict[str, float] = {}

    def failed(self, endpoint: str, retry_after_s: float | None = None) -> None:
        now = self._clock()
        self._failed_at[endpoint] = now
        if retry_after_s is not None:
            self._not_before[endpoint] = now + min(max(retry_after_s, 0.0), self.policy.retry_after_max_s)

    def ok(self, endpoint: str) -> None:
        self._failed_at.pop(endpoint, None)
        self._not_before.pop(endpoint, None)

    def avoided(self, endpoint: str) -> bool:
        at = self._failed_at.get(endpoint)
        return at is not None and self._clock() - at < self.policy.cooloff_s

    def wait_s(self, endpoint: str) -> float:
        """Seconds until `endpoint` may be tried (its Retry-After), 0 if now."""
        return max(0.0, self._not_before.get(endpoint, 0.0) - self._clock())


class Attempts:
    """The tries of one request over `order` (the router's preference)."""

    def __init__(self, order: Sequence[str], health: Health, what: str, on_retry: Callable[[], None]) -> None:
        self._order = list(order)
        self._health = health
        self._what = what
        self._on_retry = on_retry
        self._fails = {e: 0 for e in self._order}
        self.errors: list[str] = []

    def _pick(self) -> str:
        return min(self._order, key=lambda e: (self._fails[e], self._health.avoided(e), self._order.index(e)))

    async def __aiter__(self) -> AsyncIterator[str]:
        policy = self._health.policy
        for attempt in range(policy.retries + 1):
            endpoint = self._pick()
            if attempt:
                self._on_retry()
                backoff = policy.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
                await asyncio.sleep(max(backoff, self._health.wait_s(endpoint)))
            yield endpoint

    def succeeded(self, endpoint: str) -> None:
        self._health.ok(endpoint)

    def failed(self, endpoint: str, why: str, retry_after: str | None = None) -> None:
        self._fails[endpoint] += 1
        self._health.failed(endpoint, parse_retry_after(retry_after))
        self.errors.append(f"{endpoint}: {why}")

    def exhausted(self) -> BackendError:
        return BackendError(f"{self._what} failed after {len(self.errors)} attempts: {'; '.join(self.errors[-3:])}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None
