"""TrimR (Lin et al. 2025): verifier-based compression of long chains of thought.

The reasoning is streamed and split into thoughts at reflection markers ("\\n\\nWait", ...).
For each finished thought a judge answers prefill-only yes/no questions by P(Yes) vs P(No):
does this thought reach an answer, and is it the same answer as the previous one. Two
answers that the rule-based check (verifiers.answer.equivalent) finds equal need no judge.
Judge calls run as concurrent tasks beside decoding and never block it or each other; a
failed call is retried once, then recorded and its question skipped. The stream is cut when
- overthinking: M consecutive thoughts reached the same answer;
- underthinking: R of the token budget or N thoughts passed without converging;
- repetition: some n-gram of tokens came back `repeats` times (rolling hash);
and generation continues greedily from the exact token prefix plus a steering text.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

from pydantic import Field

from ..records.result import Result
from ..records.trace import StreamedChild
from ..runtime.contract import StrategyContext
from ..verifiers.answer import equivalent_async, extract
from .base import Configured, StrategyConfig

SKIPPED = "\0skipped"  # a thought whose judge call failed twice: it neither breaks nor extends a run


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
    # rule_then_judge: equivalent answers agree without a judge call, the judge decides the rest
    same_answer: Literal["rule_then_judge", "rule", "judge"] = "rule_then_judge"


class _Watch:
    """What the judge has said so far. Tasks fill it in any order; `converged` reads it in
    thought order without awaiting anything."""

    def __init__(self, agree: int) -> None:
        self.agree = agree
        self.answers: list[asyncio.Future[str | None]] = []  # per thought: its answer, None, or SKIPPED
        self.same: dict[int, bool] = {}  # thought i agrees with the thought before it
        self.failures: list[str] = []
        self.retries = 0

    def converged(self) -> bool:
        run = 0
        for i, fut in enumerate(self.answers):
            if not fut.done():
                return False
            answer = fut.result()
            if answer == SKIPPED:
                continue
            if answer is None:
                run = 0
                continue
            if i not in self.same:
                return False
            run = run + 1 if self.same[i] else 1
            if run >= self.agree:
                return True
        return False


class Trim(Configured[TrimConfig], name="trim"):
    async def _ask(self, ctx: StrategyContext, watch: _Watch, context: str, question: str) -> bool | None:
        """The judge's yes/no; None when the call failed twice or no verifier call is left.
        Every try is a verifier call in the ledger, failed or not."""
        for attempt in range(2):
            try:
                p = await ctx.ask(context, question)
            except Exception as e:  # noqa: BLE001 - any judge failure costs one question, not the detection
                error = f"{type(e).__name__}: {e}"
                watch.retries += attempt == 0
                continue
            return None if p is None else p >= 0.5
        watch.failures.append(error)
        return None

    async def _judge_thought(self, ctx: StrategyContext, watch: _Watch, index: int, thought: str) -> None:
        cfg, mine = self.config, watch.answers[index]
        reached = await self._ask(ctx, watch, f"Problem: {ctx.problem.question}\n\nReasoning: {thought.strip()}", cfg.answer_question)
        answer = SKIPPED if reached is None else (extract(thought, ctx.problem.choices).text if reached else "") or None
        mine.set_result(answer)
        if answer is None or answer == SKIPPED:
            return
        previous = None
        for fut in reversed(watch.answers[:index]):  # the last thought before this one that was not skipped
            previous = await fut
            if previous != SKIPPED:
                break
        if previous is None or previous == SKIPPED:
            same = False
        elif cfg.same_answer != "judge" and await equivalent_async(previous, answer):
            same = True
        elif cfg.same_answer == "rule":
            same = False
        else:
            same = bool(await self._ask(ctx, watch, f"Answer A: {previous}\nAnswer B: {answer}", cfg.same_question))
        watch.same[index] = same

    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        watch = _Watch(cfg.agree)
        tasks: list[asyncio.Task] = []
        start, decision = 0, None
        seen: dict[int, int] = {}
        sample = StreamedChild(ctx.tree, ctx.tree.root)
        sampling = ctx.sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens)
        async with contextlib.aclosing(ctx.stream(ctx.tree.root, sampling)) as stream:
            async for d in stream:
                sample.add(d)
                for end in range(len(sample.ids) - len(d.token_ids), len(sample.ids)):
                    if end + 1 >= cfg.ngram:
                        key = hash(tuple(sample.ids[end + 1 - cfg.ngram : end + 1]))
                        seen[key] = seen.get(key, 0) + 1
                        if seen[key] >= cfg.repeats:
                            decision = decision or "repetition"
                text = sample.text
                cut = min((i for i in (text.find(m, start + 1) for m in cfg.markers) if i > start), default=-1)
                if cut > 0:  # a thought ended where the next reflection begins
                    watch.answers.append(asyncio.get_running_loop().create_future())
                    tasks.append(asyncio.create_task(self._judge_thought(ctx, watch, len(tasks), text[start:cut])))
                    start = cut
                if watch.converged():
                    decision = "overthinking"
                elif not decision and (len(sample.ids) >= cfg.underthink_ratio * cfg.max_tokens or len(tasks) >= cfg.max_thoughts):
                    decision = "underthinking"
                if decision:
                    break
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        trimmed = decision is not None and sample.finish != "eos"
        node = sample.node(None if sample.finish else "abort", decision=decision or "none", thoughts=len(tasks), judge_failures=watch.failures)
        if trimmed:
            steer_ids = ctx.tokenizer.encode(cfg.steer)
            steered = ctx.tree.add(node, steer_ids, cfg.steer, "stop", ctx.tree.now(), steer=True)
            (node,) = await ctx.extend(steered, ctx.sampling(temperature=0.0, max_tokens=cfg.final_tokens))
        metrics = {
            "thoughts": len(tasks), "trimmed": int(trimmed), "streamed_tokens": len(sample.ids),
            "judge_failures": len(watch.failures), "judge_retries": watch.retries,
        }
        if decision:
            metrics[decision] = 1
        chosen = ctx.candidate(node)
        return ctx.result(self.name, chosen, [chosen], metrics)
