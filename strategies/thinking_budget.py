"""Budget forcing (s1, Muennighoff et al. 2025) for one sample, and the `thinking_budget:`
option of the strategies that sample full solutions.

A forced sample is a chain of requests, each continuing the exact ids of the one before:
- while thinking, a request stops at the end delimiter (or EOS). Before `min_thinking_tokens`
  the delimiter's tokens are dropped and the continuation ("Wait") appended, at most
  `max_waits` times; then the answer follows in a request of its own;
- a thinking block that reaches `max_thinking_tokens` is closed with the end delimiter and
  an answer prefix, and the answer is generated with its own cap (`answer_tokens`).
The consumer sees one stream of deltas, as from one request: the inserted text arrives as
deltas of its own, dropped delimiter tokens never arrive (deltas that may begin a delimiter
are held back until the text shows they do not), and only the last delta carries a finish.
Every request goes through the context, so the ledger and budgets see each one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import AsyncIterator, Sequence

from pydantic import Field, ValidationInfo, field_validator

from ..records.trace import Node, StreamedChild
from ..runtime.contract import Completion, Delta, Sampling, StrategyConfig, StrategyContext, ThinkingConfig
from .base import together

SEGMENT_SEED = 1_000_033  # a continuation's seed: the sample's, moved by this per segment


class ThinkingBudget(StrategyConfig):
    min_thinking_tokens: int | None = Field(None, ge=1)
    max_thinking_tokens: int | None = Field(None, ge=1)
    max_waits: int = Field(2, ge=0)  # continuations appended at most, per sample
    continuation: str = Field("Wait", min_length=1)
    answer_prefix: str = "\n\nFinal Answer: \\boxed{"  # after the end delimiter, when thinking is cut
    answer_tokens: int = Field(256, ge=1)  # the answer's own cap, after thinking

    @field_validator("max_thinking_tokens")
    @classmethod
    def _order(cls, hi: int | None, info: ValidationInfo) -> int | None:
        lo = info.data.get("min_thinking_tokens")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_thinking_tokens ({lo}) is above max_thinking_tokens ({hi})")
        return hi


@dataclass
class Forcing:
    """What forcing did to one sample."""

    waits: int = 0  # continuations appended
    cut: bool = False  # thinking closed at the cap
    thinking: int = 0  # tokens in the thinking block (inserted ones included)
    requests: int = 0


class _Holdback:
    """Deltas of one request, released once their text cannot begin the end delimiter."""

    def __init__(self, end: str) -> None:
        self.end, self.held, self.text = end, [], ""

    def add(self, d: Delta) -> list[Delta]:
        self.hold(d)
        keep = max((k for k in range(1, len(self.end)) if self.text.endswith(self.end[:k])), default=0)
        return self._release(len(self.text) - keep)

    def hold(self, d: Delta) -> None:
        self.held.append(d)
        self.text += d.text

    def _release(self, upto: int) -> list[Delta]:
        out, used = [], 0
        while self.held and used + len(self.held[0].text) <= upto:
            d = self.held.pop(0)
            used += len(d.text)
            out.append(d)
        self.text = self.text[used:]
        return out

    def split(self) -> tuple[list[Delta], list[Delta]]:
        """(the held deltas wholly before the delimiter, the rest: its tokens); both handed out."""
        at = self.text.rfind(self.end)
        before = self._release(at if at >= 0 else len(self.text))  # no delimiter (EOS): all of it
        rest, self.held, self.text = self.held, [], ""
        return before, rest


def _quiet(d: Delta) -> Delta:
    """A request's last delta as a middle piece of the sample's stream."""
    return replace(d, finish_reason=None, stop_string=None, usage=None)


def _count(deltas: Sequence[Delta]) -> int:
    return sum(len(d.token_ids) for d in deltas)


async def forced_stream(ctx: StrategyContext, parent: Node, sampling: Sampling, budget: ThinkingBudget,
                        log: Forcing | None = None) -> AsyncIterator[Delta]:
    """One sample continuing `parent`, forced to the budget, as one stream of deltas."""
    log = log if log is not None else Forcing()
    think = ctx.prompt.thinking or ThinkingConfig()
    tok = ctx.tokenizer
    ids = list(parent.ids)
    state = "thinking" if think.is_open(tok.decode(ids)) else "before"
    spent = answered = 0  # tokens of this sample (inserted ones included); the model's in its answer

    def take(d: Delta, model: bool = True) -> Delta:
        """`d` becomes part of the sample: its ids continue the trajectory."""
        nonlocal spent, answered
        ids.extend(d.token_ids)
        spent += len(d.token_ids)
        if state == "thinking":
            log.thinking += len(d.token_ids)
        elif state == "answer" and model:
            answered += len(d.token_ids)
        return d

    def inserted(text: str) -> Delta:
        return take(Delta(tuple(tok.encode(text)), text), model=False)

    while True:
        left = sampling.max_tokens - spent
        stop = sampling.stop
        if state == "thinking":
            room = left if budget.max_thinking_tokens is None else min(left, budget.max_thinking_tokens - log.thinking)
            stop += (think.end,)
        elif state == "answer":
            room = min(left, budget.answer_tokens - answered)
        else:  # the model may open thinking itself: the request ends there
            room, stop = left, stop + (think.start,)
        if state == "thinking" and room < 1 and left >= 1:  # the thinking cap, reached at a request's end
            log.cut = True
            yield inserted(think.end)
            state = "answer"
            yield inserted(budget.answer_prefix)
            continue
        if room < 1:
            yield Delta((), "", "length")
            return
        seed = None if sampling.seed is None else sampling.seed + log.requests * SEGMENT_SEED
        at = Node(-1, None, (), "", 0, None, tuple(ids))  # a continuation of these exact ids
        held = _Holdback(think.end)
        last: Delta | None = None
        log.requests += 1
        async with contextlib.aclosing(ctx.stream(at, replace(sampling, n=1, max_tokens=room, stop=stop, seed=seed))) as source:
            async for d in source:
                if d.finish_reason is not None:
                    last = d
                    break
                for out in (held.add(d) if state == "thinking" else [d]):
                    yield take(out)
        if last is None:  # the stream ended without a finish
            yield Delta((), "", "abort")
            return
        if state == "thinking" and (last.finish_reason == "eos" or (last.finish_reason == "stop" and last.stop_string == think.end)):
            eos = last.finish_reason == "eos"
            held.hold(replace(last, token_ids=tuple(t for t in last.token_ids if t != tok.eos_token_id)) if eos else last)
            before, rest = held.split()
            if budget.min_thinking_tokens is not None and log.thinking + _count(before) < budget.min_thinking_tokens \
                    and log.waits < budget.max_waits:
                # thinking ended early: its end (delimiter or EOS) is dropped, the continuation appended
                for out in before:
                    yield take(_quiet(out))
                log.waits += 1
                yield inserted(budget.continuation)
                continue
            if eos:  # the model ended its turn while thinking: nothing left to force
                for out in (before + rest)[:-1]:
                    yield take(out)
                yield take(last)
                return
            for out in before + rest:  # the model's own delimiter, as it wrote it
                yield take(_quiet(out))
            state = "answer"
            continue
        finals = held.held + [last] if state == "thinking" else [last]
        for out in finals[:-1]:
            yield take(out)
        if state == "before" and last.finish_reason == "stop" and last.stop_string == think.start:
            yield take(_quiet(last))
            state = "thinking"
            continue
        if state == "thinking" and last.finish_reason == "length" and budget.max_thinking_tokens is not None \
                and log.thinking + len(last.token_ids) >= budget.max_thinking_tokens:
            yield take(_quiet(last))
            log.cut = True
            yield inserted(think.end)
            state = "answer"
            yield inserted(budget.answer_prefix)
            continue
        yield take(last)
        return


async def forced_sample(ctx: StrategyContext, parent: Node, sampling: Sampling, budget: ThinkingBudget, **attrs: object) -> tuple[Node, Completion]:
    """One forced sample collected into a child of `parent` (one node, as one request would give)."""
    log = Forcing()
    child = StreamedChild(ctx.tree, parent)
    async for d in forced_stream(ctx, parent, sampling, budget, log):
        child.add(d)
    node = child.node(waits=log.waits, thinking_cut=log.cut, thinking_tokens=log.thinking, requests=log.requests, **attrs)
    tops = tuple(child.tops) if sampling.logprobs else None
    return node, Completion(tuple(child.ids), child.text, node.finish or "abort", top_logprobs=tops)


async def sample_all(ctx: StrategyContext, parent: Node, sampling: Sampling, budget: ThinkingBudget | None, **attrs: object) -> list[tuple[Node, Completion]]:
    """n samples continuing `parent`: `ctx.extend_with` without a budget; forced, each its
    own chain of requests seeded as the n samples of one request are, with one."""
    if budget is None:
        return await ctx.extend_with(parent, sampling, **attrs)
    seeds = [None if sampling.seed is None else sampling.seed + i for i in range(sampling.n)]
    return await together([forced_sample(ctx, parent, replace(sampling, n=1, seed=seed), budget, **attrs) for seed in seeds])


def sample_stream(ctx: StrategyContext, parent: Node, sampling: Sampling, budget: ThinkingBudget | None) -> AsyncIterator[Delta]:
    """One streamed sample continuing `parent`: `ctx.stream`, or forced with a budget."""
    return ctx.stream(parent, sampling) if budget is None else forced_stream(ctx, parent, sampling, budget)
