"""What one API request may spend, enforced on every engine call it makes.

Strategies name their sampling caps differently (max_tokens, step_tokens, final_tokens) and
step strategies extend a trajectory over many requests, so a client's `max_tokens` cannot be
kept by config fields alone. LimitedBackend wraps the server's backend for one request:
- a trajectory (a prompt that starts with the request's own prompt) never grows past
  `sample_tokens` generated tokens, however many steps it takes;
- the request's generated tokens never pass `budget`: each call reserves n x max_tokens
  before it is sent and gives back what it did not use, so concurrent calls cannot overshoot;
- the client's stop strings are added to every call; a sample that hits one ends its
  trajectory (reported as a finish, not as a step boundary).
A call with no room left is answered without the engine: n empty samples cut by length.
Greedy calls for n > 1 samples go to the engine as n single requests (vLLM refuses them).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import AsyncIterator, Callable, Sequence

from ...backends.base import Backend, BackendStats, Completion, Delta, Sampling, Tokenizer, Usage


@dataclass(frozen=True)
class RequestLimits:
    sample_tokens: int | None = None  # per trajectory (the client's max_tokens)
    budget: int | None = None  # generated tokens over the whole request (the server's cap)
    stop: tuple[str, ...] = ()
    context: int | None = None  # the engine's context length: no call asks for more than fits


class LimitedBackend:
    def __init__(self, backend: Backend, limits: RequestLimits, prompt_ids: Sequence[int]) -> None:
        self.inner = backend
        self.limits = limits
        self._prompt = tuple(prompt_ids)
        self._left = limits.budget
        self._calls = 0
        # sees every streamed delta as (call number, prompt ids, delta): live reasoning (app/serve/reasoning.py)
        self.observer: Callable[[int, Sequence[int], Delta], None] | None = None

    @property
    def tokenizer(self) -> Tokenizer:
        return self.inner.tokenizer

    def stats(self) -> BackendStats:
        return self.inner.stats()

    async def close(self) -> None:  # the server owns the engine
        return None

    def _generated(self, ids: Sequence[int]) -> int:
        n = len(self._prompt)
        return len(ids) - n if len(ids) >= n and tuple(ids[:n]) == self._prompt else 0

    def _reserve(self, ids: Sequence[int], s: Sampling) -> Sampling | None:
        cap = s.max_tokens
        if self.limits.sample_tokens is not None:
            cap = min(cap, self.limits.sample_tokens - self._generated(ids))
        if self._left is not None:
            cap = min(cap, self._left // s.n)
        if self.limits.context is not None:
            cap = min(cap, self.limits.context - len(ids))
        if cap < 1:
            return None
        if self._left is not None:
            self._left -= cap * s.n
        extra = tuple(x for x in self.limits.stop if x not in s.stop)
        return replace(s, max_tokens=cap, stop=s.stop + extra)

    def _release(self, reserved: Sampling, generated: int) -> None:
        if self._left is not None:
            self._left += reserved.max_tokens * reserved.n - generated

    def _finish(self, reason: str | None, hit: str | None) -> str | None:
        # a client stop string ends the trajectory; a strategy's own delimiter only ends a step
        return "eos" if reason == "stop" and hit in self.limits.stop else reason

    async def generate(self, prompt_ids: Sequence[int], sampling: Sampling) -> list[Completion]:
        s = self._reserve(prompt_ids, sampling)
        if s is None:
            return [Completion((), "", "length") for _ in range(sampling.n)]
        generated = 0
        try:
            if s.temperature == 0 and s.n > 1:  # vLLM refuses n > 1 when greedy: n single requests (the prefix is cached)
                one = replace(s, n=1)
                out = [c for cs in await asyncio.gather(*(self.inner.generate(prompt_ids, one) for _ in range(s.n))) for c in cs]
            else:
                out = await self.inner.generate(prompt_ids, s)
            generated = sum(c.usage.generated_tokens for c in out)
        finally:
            self._release(s, generated)
        return [replace(c, finish_reason=self._finish(c.finish_reason, c.stop_string)) for c in out]  # type: ignore[arg-type]

    async def stream(self, prompt_ids: Sequence[int], sampling: Sampling) -> AsyncIterator[Delta]:
        s = self._reserve(prompt_ids, sampling)
        if s is None:
            yield Delta((), "", "length", usage=Usage())
            return
        generated = 0
        self._calls += 1
        call = self._calls
        inner = self.inner.stream(prompt_ids, s)
        try:
            async for d in inner:
                generated += len(d.token_ids)
                if self.observer is not None:
                    self.observer(call, prompt_ids, d)
                yield replace(d, finish_reason=self._finish(d.finish_reason, d.stop_string)) if d.finish_reason else d  # type: ignore[arg-type]
        finally:
            await inner.aclose()  # type: ignore[attr-defined]
            self._release(s, generated)

    async def prompt_logprobs(self, ids: Sequence[int], positions: Sequence[int]) -> list[float]:
        return await self.inner.prompt_logprobs(ids, positions)

    async def next_token_logprobs(self, ids: Sequence[int], candidates: Sequence[int]) -> list[float]:
        return await self.inner.next_token_logprobs(ids, candidates)
