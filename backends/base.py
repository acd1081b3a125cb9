"""The engine contract every strategy is written against.

A trajectory is a sequence of token ids. Continuations send the prefix ids back unchanged
(never re-tokenised text), so the engine's prefix cache hits on every full block and the
model sees exactly what it generated.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import AsyncIterator, Awaitable, Callable, Literal, Protocol, Sequence, runtime_checkable

FinishReason = Literal["eos", "stop", "length", "abort"]


@dataclass(frozen=True)
class Sampling:
    """How to sample; one frozen value per request."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    n: int = 1
    seed: int | None = None
    logprobs: int | None = None  # top-k logprobs per generated token; None = none

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"Sampling.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"Sampling.top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"Sampling.max_tokens must be >= 1, got {self.max_tokens}")
        if self.n < 1:
            raise ValueError(f"Sampling.n must be >= 1, got {self.n}")
        if self.logprobs is not None and self.logprobs < 0:
            raise ValueError(f"Sampling.logprobs must be >= 0 or None, got {self.logprobs}")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))


@dataclass(frozen=True)
class Usage:
    """Token counts of one request (or a sum of requests).

    `cached_tokens` are prompt tokens served from the prefix cache, so the prompt tokens
    the engine actually computed are `prompt_tokens - cached_tokens`.
    """

    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0

    @property
    def computed_prompt_tokens(self) -> int:
        return self.prompt_tokens - self.cached_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.cached_tokens + other.cached_tokens,
            self.generated_tokens + other.generated_tokens,
        )


@dataclass(frozen=True)
class Completion:
    """One sample, and one engine request: `usage` is that request's (its prompt, the part of
    it served from the prefix cache, what it generated). The n samples of `generate` are n
    requests, counted as the engine's own counters count them."""

    token_ids: tuple[int, ...]
    text: str
    finish_reason: FinishReason
    stop_string: str | None = None
    token_logprobs: tuple[float, ...] | None = None  # logprob of each generated token
    top_logprobs: tuple[tuple[float, ...], ...] | None = None  # top-k logprobs per position
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class Delta:
    """A streamed piece of one sample; the last delta has `finish_reason` and `usage` set.

    `cached_tokens` (prompt tokens the engine served from its prefix cache) is set on the
    first delta where the engine reports it, so a stream left early can still be accounted
    exactly; None where the engine reports it only at the end (HTTP servers)."""

    token_ids: tuple[int, ...]
    text: str
    finish_reason: FinishReason | None = None
    stop_string: str | None = None
    token_logprobs: tuple[float, ...] | None = None
    top_logprobs: tuple[tuple[float, ...], ...] | None = None
    usage: Usage | None = None
    cached_tokens: int | None = None


async def each_sample(sampling: Sampling, one: Callable[[Sampling], Awaitable[Completion]]) -> list[Completion]:
    """The n samples of `sampling` as n concurrent one-sample requests, the i-th seeded
    `seed + i` as vLLM seeds the samples of one n-request (so the tokens are the same). Each
    sample then carries the usage the engine reported for it. If one fails or the caller is
    cancelled, none keeps running."""
    single = replace(sampling, n=1)
    seeds = [None if sampling.seed is None else sampling.seed + i for i in range(sampling.n)]
    tasks = [asyncio.ensure_future(one(replace(single, seed=seed))) for seed in seeds]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        # the others have ended (their aborts recorded) before the error goes up
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def finish_reason(reason: str | None, stop_reason: object) -> tuple[FinishReason, str | None]:
    """vLLM / OpenAI finish fields to ours: (reason, the stop string hit)."""
    if reason in ("length", "abort"):
        return reason, None  # type: ignore[return-value]
    if isinstance(stop_reason, str):
        return "stop", stop_reason
    return "eos", None


@dataclass(frozen=True)
class BackendStats:
    """Cumulative counters since the backend started."""

    requests: int = 0
    aborted_requests: int = 0
    usage: Usage = field(default_factory=Usage)


@runtime_checkable
class Tokenizer(Protocol):
    eos_token_id: int

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens."""

    def decode(self, ids: Sequence[int]) -> str: ...

    def chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> list[int]:
        """Token ids of a chat rendered with the model's chat template."""


@runtime_checkable
class Backend(Protocol):
    """A batched engine. Methods are safe to call concurrently from many coroutines; the
    backend owns its engine and releases it in `close()`."""

    @property
    def tokenizer(self) -> Tokenizer: ...

    async def generate(self, prompt_ids: Sequence[int], sampling: Sampling) -> list[Completion]:
        """n samples continuing exactly `prompt_ids`, each its own engine request (see
        `each_sample`); the first computes the prompt, the others read its full blocks from
        the prefix cache."""

    def stream(self, prompt_ids: Sequence[int], sampling: Sampling) -> AsyncIterator[Delta]:
        """One sample (n must be 1) as it is generated. Leaving the iteration early (break,
        cancellation, aclose) aborts the request in the engine."""

    async def prompt_logprobs(self, ids: Sequence[int], positions: Sequence[int]) -> list[float]:
        """log P(ids[p] | ids[:p]) for each p in positions (p >= 1)."""

    async def next_token_logprobs(self, ids: Sequence[int], candidates: Sequence[int]) -> list[float]:
        """log P(c | ids) for each candidate token c: prefill-only questions (judges, PRM tags),
        served from the prefix cache when `ids` extends an earlier request."""

    def stats(self) -> BackendStats: ...

    async def close(self) -> None: ...
