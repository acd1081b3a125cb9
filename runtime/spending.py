"""What one context spends: engine requests and verifier calls, each reserved, cut to fit and recorded.

Each request first reserves what it may spend from the allowance (runtime/budget.py) and is
cut to fit; at the wall-time deadline it is cancelled (aborted in the engine) and comes back
cut short. The ledger records what the engine reported, the tokens a cut request generated
before the cut included, and splits generated tokens into thinking and answer tokens. A
prompt the model cannot continue is refused before it reaches the engine. A verifier call is
reserved against the verifier budget and its own engine requests are recorded as well.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import AsyncIterator, Awaitable, Callable, Sequence, TypeVar

from ..backends.base import Backend, Completion, Delta, FinishReason, Sampling, Tokenizer, Usage
from ..backends.meter import usage_listener
from ..verifiers.base import metering
from .budget import Allowance, DeadlineReached
from .ledger import Ledger
from .thinking import ThinkingConfig, note_generated

T = TypeVar("T")


def context_length(backend: Backend) -> int | None:
    """The model's context length where the backend tells it. The Backend contract has no
    query for it; VllmBackend carries it as `config.max_model_len`."""
    for holder in (backend, getattr(backend, "config", None)):
        length = getattr(holder, "max_model_len", None)
        if isinstance(length, int):
            return length
    return None


@dataclass(frozen=True)
class Spending:
    """One context's way to the engine and the verifiers: its budgets (`allowance`), its
    ledger, and what the ledger needs to split thinking from answer tokens. Made afresh from
    the context's current fields, so a scoped, held or sub-run context spends from its own
    allowance into its own ledger."""

    backend: Backend
    allowance: Allowance
    ledger: Ledger
    thinking: ThinkingConfig | None
    tokenizer: Tokenizer
    problem_id: str
    max_len: int | None

    def admit(self, ids: Sequence[int]) -> None:
        """Refuse a prompt the model cannot continue, before it reaches the engine."""
        if self.max_len is not None and len(ids) + 1 > self.max_len:
            raise ValueError(
                f"problem {self.problem_id}: prompt of {len(ids)} tokens leaves no room to generate "
                f"within the model's context of {self.max_len} tokens"
            )

    async def generate(self, ids: Sequence[int], sampling: Sampling, probe: bool = False) -> tuple[list[Completion], FinishReason]:
        """The samples the budget pays for (fewer than n, or none, when it cannot pay for all),
        and how the missing ones were cut: `length` (no budget) or `abort` (the deadline)."""
        grant = self.allowance.reserve_tokens(sampling.n, sampling.max_tokens)
        completions: list[Completion] = []
        cut: FinishReason = "length"
        heard: list[Usage] = []  # what the backend recorded for these requests, a cut included
        try:
            if grant.samples:
                try:
                    with usage_listener(heard.append):
                        completions = await self.allowance.within_deadline(
                            self.backend.generate(ids, replace(sampling, n=grant.samples, max_tokens=grant.max_tokens)))
                except DeadlineReached:
                    self.ledger.record(_cut_usage(heard, len(ids), grant.samples), aborted=True, requests=grant.samples)
                    cut = "abort"
                except asyncio.CancelledError:  # a sibling failed, or the caller left
                    self.ledger.record(_cut_usage(heard, len(ids), grant.samples), aborted=True, requests=grant.samples)
                    raise
                except BaseException:  # the backend failed: what it recorded was still spent
                    if heard:
                        self.ledger.record(sum(heard, Usage()), aborted=True, requests=len(heard))
                    raise
                else:  # one engine request per sample (Backend.generate)
                    self.ledger.record(sum((c.usage for c in completions), Usage()), requests=len(completions))
                    note_generated(self.ledger, self.thinking, self.tokenizer, ids, [c.token_ids for c in completions], probe)
        finally:
            grant.reservation.release()
        return completions, cut

    async def stream(self, ids: Sequence[int], sampling: Sampling) -> AsyncIterator[Delta]:
        """One sample of `ids` as it is generated; the ledger records the request, aborted or
        not. A stream the budget cannot pay for ends at once (`length`); one cut at the
        deadline ends with an `abort` delta."""
        self.admit(ids)
        grant = self.allowance.reserve_tokens(1, sampling.max_tokens)
        generated, cached, finished = 0, 0, False
        got: list[int] = []  # the ids read, split into thinking and answer tokens at the end
        heard: list[Usage] = []  # what the backend recorded for this request, when it was cut
        try:
            if not grant.samples:
                yield Delta((), "", "length", usage=Usage())
                return
            source = self.backend.stream(ids, replace(sampling, max_tokens=grant.max_tokens)).__aiter__()
            try:
                while True:
                    try:
                        with usage_listener(heard.append):
                            d = await self.allowance.within_deadline(source.__anext__())
                    except StopAsyncIteration:
                        break
                    except DeadlineReached:
                        with usage_listener(heard.append):
                            await source.aclose()
                        finished = True
                        usage = heard[-1] if heard else Usage(len(ids), cached, generated)
                        self.ledger.record(usage, aborted=True)
                        yield Delta((), "", "abort", usage=usage)
                        break
                    generated += len(d.token_ids)
                    got.extend(d.token_ids)
                    cached = d.cached_tokens or cached  # the engine reports it early, for streams left early
                    if d.usage is not None:
                        finished = True
                        self.ledger.record(d.usage, aborted=d.finish_reason == "abort")
                    yield d
            finally:
                with usage_listener(heard.append):
                    await source.aclose()  # leaving early aborts the request in the engine
        finally:
            if grant.samples:
                # tokens the engine generated past what was read (a stream left early) count too
                unread = max(0, heard[-1].generated_tokens - len(got)) if heard else 0
                note_generated(self.ledger, self.thinking, self.tokenizer, ids, [got], unread=unread)
            if grant.samples and not finished:
                # the engine's own count where the backend reported the cut: tokens it generated
                # that this consumer never read are spent too
                self.ledger.record(heard[-1] if heard else Usage(len(ids), cached, generated), aborted=True)
            grant.reservation.release()

    async def verifier_call(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """One verifier call (a PRM score, a judge's question): reserved against the verifier
        budget, its engine requests recorded in the ledger as the engine reported them, cut at
        the deadline. None when no call is left."""
        held = self.allowance.reserve_call()
        if held is None:
            return None
        try:
            with metering() as meter:
                try:
                    return await self.allowance.within_deadline(call())
                finally:
                    self.ledger.record_verifier(1, usage=meter.usage, requests=meter.requests)
        except DeadlineReached:
            return None
        finally:
            held.release()


def _cut_usage(heard: Sequence[Usage], prompt_tokens: int, samples: int) -> Usage:
    """What `samples` requests cut short spent: what the backend recorded for them (tokens
    generated before the cut included), and their prompts for those it recorded nothing of
    (an HTTP server tells nothing about a request its client left)."""
    return sum(heard, Usage()) + Usage(prompt_tokens * max(0, samples - len(heard)))
