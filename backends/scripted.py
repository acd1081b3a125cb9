"""A deterministic backend for fast strategy tests.

Tokens are characters (id = code point, EOS = 0), answers come from a script function,
time advances `token_delay_s` per generated token, and a block-granular prefix cache is
simulated, so strategies see the same contract as on the real engine: stop strings kept
in the output, n samples as n requests sharing the prompt through the cache, cached prompt tokens in whole blocks, aborts.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Sequence

from .base import BackendStats, Completion, Delta, FinishReason, Sampling, Usage
from .meter import Meter

EOS = 0
ASSISTANT = "<|assistant|>"


@dataclass(frozen=True)
class ScriptCall:
    """What the script sees for one sample."""

    prompt: str  # decoded prompt (the whole prefix, including earlier steps)
    index: int  # sample index within the request
    seed: int | None
    sampling: Sampling

    @property
    def generated(self) -> str:
        """What the assistant already wrote in this prefix (text after the last assistant tag)."""
        i = self.prompt.rfind(ASSISTANT)
        return self.prompt[i + len(ASSISTANT) :] if i >= 0 else ""


Script = Callable[[ScriptCall], str]  # the response text (EOS follows unless cut)


class CharTokenizer:
    eos_token_id = EOS

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in ids if i != EOS)

    def chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> list[int]:
        text = "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages)
        return self.encode(text + (ASSISTANT if add_generation_prompt else ""))


def _default_logprob(prefix: Sequence[int], token: int) -> float:
    digest = hashlib.blake2b(repr((tuple(prefix[-16:]), token)).encode(), digest_size=4).digest()
    return -5.0 * int.from_bytes(digest, "big") / 2**32


class ScriptedBackend:
    def __init__(
        self,
        script: Script | Sequence[str],
        token_delay_s: float = 0.0,
        block_size: int = 16,
        logprob: Callable[[Sequence[int], int], float] = _default_logprob,
    ) -> None:
        if isinstance(script, (list, tuple)):
            answers = list(script)
            script = lambda call: answers[call.index % len(answers)]  # noqa: E731
        self._script = script
        self._delay = token_delay_s
        self._block = block_size
        self._logprob = logprob
        self._tokenizer = CharTokenizer()
        self._cached_blocks: set[tuple[int, ...]] = set()
        self._meter = Meter()
        self.calls: list[ScriptCall] = []  # every sample asked for, in order

    @property
    def tokenizer(self) -> CharTokenizer:
        return self._tokenizer

    def stats(self) -> BackendStats:
        return self._meter.stats

    async def close(self) -> None:
        pass

    # -- engine simulation -------------------------------------------------------------
    def _prefill(self, ids: tuple[int, ...]) -> Usage:
        """Cached prompt tokens come in whole blocks and never cover the last prompt token."""
        cached = 0
        for end in range(self._block, len(ids), self._block):
            if ids[:end] not in self._cached_blocks:
                break
            cached = end
        self._remember(ids)
        return Usage(prompt_tokens=len(ids), cached_tokens=cached)

    def _remember(self, ids: tuple[int, ...]) -> None:
        for end in range(self._block, len(ids) + 1, self._block):
            self._cached_blocks.add(ids[:end])

    def _plan(self, prompt: tuple[int, ...], call: ScriptCall) -> tuple[list[int], FinishReason, str | None]:
        """Tokens the sample will produce, cut at the first stop string (kept) or max_tokens.
        A script may return the whole response from the start: the part already in the
        prefix is skipped, so continuations continue."""
        text = self._script(call)
        if call.generated and text.startswith(call.generated):
            text = text[len(call.generated) :]
        stop_at, hit = len(text) + 1, None
        for s in call.sampling.stop:
            i = text.find(s)
            if i >= 0 and i + len(s) < stop_at:
                stop_at, hit = i + len(s), s
        reason: FinishReason = "stop" if hit else "eos"
        ids = self._tokenizer.encode(text[:stop_at]) + ([] if hit else [EOS])
        if len(ids) > call.sampling.max_tokens:
            ids, reason, hit = ids[: call.sampling.max_tokens], "length", None
        return ids, reason, hit

    def _logprobs(self, prefix: Sequence[int], ids: Sequence[int], k: int | None):
        if k is None:
            return None, None
        ctx = list(prefix)
        chosen, tops = [], []
        for t in ids:
            lp = self._logprob(ctx, t)
            chosen.append(lp)
            alts = sorted([lp] + [self._logprob(ctx, t + j + 1) for j in range(max(k - 1, 0))], reverse=True)
            tops.append(tuple(alts[:k]))
            ctx.append(t)
        return tuple(chosen), tuple(tops)

    # -- contract -------------------------------------------------------------------------
    async def generate(self, prompt_ids: Sequence[int], sampling: Sampling) -> list[Completion]:
        prompt = tuple(prompt_ids)
        # each sample is its own request: the first computes the prompt, the rest hit its blocks
        prefills = [self._prefill(prompt) for _ in range(sampling.n)]
        plans = []
        for i in range(sampling.n):
            call = ScriptCall(self._tokenizer.decode(prompt), i, None if sampling.seed is None else sampling.seed + i, sampling)
            self.calls.append(call)
            plans.append(self._plan(prompt, call))
        started = time.monotonic()
        try:
            await asyncio.sleep(self._delay * max(len(p[0]) for p in plans))
        except asyncio.CancelledError:
            # as an engine does: each sample is aborted with the tokens it had generated so far
            sent = int((time.monotonic() - started) / self._delay) if self._delay else 0
            for i, (ids, _, _) in enumerate(plans):
                self._meter.record(prefills[i] + Usage(generated_tokens=min(sent, len(ids))), aborted=True)
            raise
        out = []
        for i, (ids, reason, hit) in enumerate(plans):
            self._remember(prompt + tuple(ids))
            chosen, tops = self._logprobs(prompt, ids, sampling.logprobs)
            usage = prefills[i] + Usage(generated_tokens=len(ids))
            out.append(Completion(tuple(ids), self._tokenizer.decode(ids), reason, hit, chosen, tops, usage))
            self._meter.record(usage)
        return out

    async def stream(self, prompt_ids: Sequence[int], sampling: Sampling) -> AsyncIterator[Delta]:
        if sampling.n != 1:
            raise ValueError(f"stream needs Sampling.n == 1, got {sampling.n}")
        prompt = tuple(prompt_ids)
        prefill = self._prefill(prompt)
        call = ScriptCall(self._tokenizer.decode(prompt), 0, sampling.seed, sampling)
        self.calls.append(call)
        ids, reason, hit = self._plan(prompt, call)
        sent = 0
        try:
            for j, t in enumerate(ids):
                await asyncio.sleep(self._delay)
                sent = j + 1
                chosen, tops = self._logprobs(prompt + tuple(ids[:j]), [t], sampling.logprobs)
                cached = prefill.cached_tokens if j == 0 else None
                if sent < len(ids):
                    yield Delta((t,), self._tokenizer.decode([t]), token_logprobs=chosen, top_logprobs=tops, cached_tokens=cached)
            self._remember(prompt + tuple(ids))
            usage = prefill + Usage(generated_tokens=len(ids))
            self._meter.record(usage)
            yield Delta((ids[-1],), self._tokenizer.decode(ids[-1:]), reason, hit, chosen, tops, usage, cached)
        finally:
            if sent < len(ids):
                self._meter.record(prefill + Usage(generated_tokens=sent), aborted=True)

    async def prompt_logprobs(self, ids: Sequence[int], positions: Sequence[int]) -> list[float]:
        for p in positions:
            if not 1 <= p < len(ids):
                raise ValueError(f"prompt_logprobs position {p} outside 1..{len(ids) - 1}")
        self._meter.record(Usage(prompt_tokens=len(ids)))
        return [self._logprob(ids[:p], ids[p]) for p in positions]

    async def next_token_logprobs(self, ids: Sequence[int], candidates: Sequence[int]) -> list[float]:
        self._meter.record(self._prefill(tuple(ids)))
        return [self._logprob(list(ids), c) for c in candidates]

