"""TrimR (Lin et al. 2025): verifier-based compression of long chains of thought.

The reasoning is streamed and split into thoughts at reflection markers ("\\n\\nWait", ...).
For each finished thought a judge answers prefill-only yes/no questions by P(Yes) vs P(No):
does this thought reach an answer, and is it the same answer as the previous one. Judge
calls run as tasks beside decoding and never block it. The stream is cut when
- overthinking: M consecutive thoughts reached the same answer;
- underthinking: R of the token budget or N thoughts passed without converging;
- repetition: some n-gram of tokens came back `repeats` times (rolling hash);
and generation continues greedily from the exact token prefix plus a steering text.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from pydantic import Field

from ..runtime.context import Context
from ..records.result import Result
from ..verifiers.answer import extract
from .base import Configured, StrategyConfig


class TrimConfig(StrategyConfig):
    markers: list[str] = Field(default_factory=lambda: ["\n\nWait", "\n\nBut", "\n\nAlternatively", "\n\nHmm"])
    agree: int = Field(2, ge=1)  # M
    underthink_ratio: float = Field(0.5, gt=0, le=1)  # R
    max_thoughts: int = Field(10, ge=1)  # N
    steer: str = "\n\n**Final Answer**\n"
    max_tokens: int = Field(4096, ge=1)
    final_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    ngram: int = Field(16, ge=2)
    repeats: int = Field(4, ge=2)
    answer_question: str = "Does this reasoning reach a final answer?"
    same_question: str = "Are these two answers the same?"


class _Watch:
    """What the judge has said so far; updated by judge tasks in thought order."""

    def __init__(self, agree: int) -> None:
        self.agree = agree
        self.answers: dict[int, str | None] = {}
        self.next = 0
        self.last: str | None = None
        self.run = 0
        self.converged = False
        self.lock = asyncio.Lock()


class Trim(Configured[TrimConfig]):
    name: ClassVar[str] = "trim"
    Config: ClassVar[type[StrategyConfig]] = TrimConfig
    needs_scorer: ClassVar[bool] = False

    def _judge(self, ctx: Context) -> Any:
        if ctx.scorer is not None and hasattr(ctx.scorer, "p_yes"):
            return ctx.scorer
        from ..verifiers.judge import Judge

        return Judge(ctx.backend)

    async def _ask(self, ctx: Context, judge: Any, context: str, question: str) -> bool:
        p = await judge.p_yes(context, question)
        ctx.ledger.record_verifier(1, len(ctx.tokenizer.encode(context)))
        return p >= 0.5

    async def _judge_thought(self, ctx: Context, judge: Any, watch: _Watch, index: int, thought: str) -> None:
        reached = await self._ask(ctx, judge, f"Problem: {ctx.problem.question}\n\nReasoning: {thought.strip()}", self.config.answer_question)
        answer = extract(thought, ctx.problem.choices).text if reached else None
        async with watch.lock:  # agreement is judged between consecutive thoughts, in order
            watch.answers[index] = answer or None
            while watch.next in watch.answers:
                ans = watch.answers.pop(watch.next)
                watch.next += 1
                if ans is None:
                    watch.run = 0
                    continue
                same = watch.last is not None and await self._ask(ctx, judge, f"Answer A: {watch.last}\nAnswer B: {ans}", self.config.same_question)
                watch.run = watch.run + 1 if same else 1
                watch.last = ans
                if watch.run >= watch.agree:
                    watch.converged = True

    async def run(self, ctx: Context) -> Result:
        cfg = self.config
        judge = self._judge(ctx)
        watch = _Watch(cfg.agree)
        tasks: set[asyncio.Task] = set()
        ids: list[int] = []
        text, start, thoughts, finish, decision = "", 0, 0, "eos", None
        seen: dict[int, int] = {}
        t0 = ctx.tree.now()
        sampling = ctx.sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens)
        async with contextlib.aclosing(ctx.stream(ctx.tree.root, sampling)) as stream:
            async for d in stream:
                for t in d.token_ids:
                    ids.append(t)
                    if len(ids) >= cfg.ngram:
                        key = hash(tuple(ids[-cfg.ngram:]))
                        seen[key] = seen.get(key, 0) + 1
                        if seen[key] >= cfg.repeats:
                            decision = decision or "repetition"
                text += d.text
                cut = min((i for i in (text.find(m, start + 1) for m in cfg.markers) if i > start), default=-1)
                if cut > 0:  # a thought ended where the next reflection begins
                    tasks.add(asyncio.create_task(self._judge_thought(ctx, judge, watch, thoughts, text[start:cut])))
                    thoughts, start = thoughts + 1, cut
                if watch.converged:
                    decision = "overthinking"
                elif not decision and (len(ids) >= cfg.underthink_ratio * cfg.max_tokens or thoughts >= cfg.max_thoughts):
                    decision = "underthinking"
                if d.finish_reason is not None:
                    finish = d.finish_reason
                if decision:
                    break
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        node = ctx.tree.add(ctx.tree.root, ids, text, "abort" if decision else finish, t0, decision=decision or "none", thoughts=thoughts)
        if decision:
            steer_ids = ctx.tokenizer.encode(cfg.steer)
            steered = ctx.tree.add(node, steer_ids, cfg.steer, "stop", ctx.tree.now(), steer=True)
            (node,) = await ctx.extend(steered, ctx.sampling(temperature=0.0, max_tokens=cfg.final_tokens))
        metrics = {"thoughts": thoughts, "trimmed": int(decision is not None), "streamed_tokens": len(ids)}
        if decision:
            metrics[decision] = 1
        chosen = ctx.candidate(node)
        return ctx.result(self.name, chosen, [chosen], metrics)
