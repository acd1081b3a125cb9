"""Parallel-Distill-Refine and Sequential Refinement (Madaan et al. 2025).

Rounds r = 1..R draft M_r candidates in parallel. Between rounds a distill operator turns
the drafts into a workspace of at most κ tokens, rebuilt every round: `summary` (the model
writes one summary of agreements, contradictions, intermediate results and open subgoals),
`top_k` (the k best drafts by verifier score, or by vote share without a scorer) or
`random_k` (each generator gets its own k random drafts). Round r's drafts answer the
question given the workspace. The last round has one draft, which is the answer. `sr` is
the same loop with one draft per round. A workspace made of drafts gives each draft an
equal share of κ (its end, where the answer is), so every draft is seen. Summary and
refinement prompts are rendered by the run's PromptConfig (system, chat or plain). When the
budget stops the rounds early, the answer is the vote over the last round's drafts.
With a `drafter:` (any strategy, e.g. beam_search with
its scorer) round 1's drafts are M_1 runs of it, each a sub-run with its own seeds whose answer
is one draft; later rounds answer given the workspace and sample. B_tot counts every generated token; B_seq the tokens on the accepted path (the longest
draft of each round, plus the summaries), the latency-bound budget the paper reports.
"""

from __future__ import annotations

import random
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from ..runtime.contract import StrategyContext
from ..records.result import Result
from ..records.trace import Node, split_steps
from ..verifiers.voting import clusters_async, select_async
from .base import Aggregate, Configured, StrategyConfig, StrategySpec, chosen_candidate, together

SUMMARY_ASK = (
    "Here are several attempts at the problem above. Write a short summary for someone solving it: "
    "where the attempts agree, where they contradict each other, useful intermediate results, and "
    "what is still open. Do not solve it again."
)
REFINE_ASK = "Here are notes from earlier attempts at this problem:\n\n{workspace}\n\nUsing them where they help, solve the problem."


class PDRConfig(StrategyConfig):
    schedule: list[int] = Field(default_factory=lambda: [4, 4, 1])  # M_r per round
    distill: Literal["summary", "top_k", "random_k"] = "summary"
    k: int = Field(2, ge=1)
    workspace_tokens: int = Field(1024, ge=16)  # κ
    max_tokens: int = Field(1024, ge=1)  # per draft
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    aggregate: Aggregate = "last"
    drafter: StrategySpec | None = None  # round 1's drafts: M_1 runs of this strategy (default: M_1 samples)

    @model_validator(mode="after")
    def _check(self) -> "PDRConfig":
        if not self.schedule or any(m < 1 for m in self.schedule):
            raise ValueError("schedule must be a non-empty list of positive draft counts")
        if self.schedule[-1] != 1:
            raise ValueError(f"the last round must have one draft (schedule ends with 1), got {self.schedule}")
        return self


class SRConfig(PDRConfig):
    schedule: list[int] = Field(default_factory=lambda: [1, 1, 1])
    distill: Literal["summary", "top_k", "random_k"] = "top_k"
    k: int = Field(1, ge=1)


class PDR(Configured[PDRConfig], name="pdr"):
    def __init__(self, config: PDRConfig) -> None:
        super().__init__(config)
        self.drafter = config.drafter.build() if config.drafter is not None else None
        if self.drafter is not None:  # per instance: a drafter that searches needs the scorer
            self.needs_scorer = bool(getattr(self.drafter, "needs_scorer", False))  # type: ignore[misc]

    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        rng = ctx.random()
        question_ids = list(ctx.tree.root.ids)
        drafts = await self._draft(ctx)
        if not drafts:
            return ctx.result(self.name, None, [], {"rounds": 0, "question_tokens": len(question_ids)})
        for d in drafts:
            ctx.tree.set(d, round=1)
        b_seq = max(len(d.generated_ids) for d in drafts)
        rounds = 1
        for r, m in enumerate(cfg.schedule[1:], start=2):
            if ctx.exhausted():
                break
            rounds = r
            workspaces, summary_tokens = await self._distill(ctx, drafts, m, rng)
            b_seq += summary_tokens
            # one shared workspace: one request with m samples; one workspace each: m requests
            counts = [m] if len(workspaces) == 1 else [1] * len(workspaces)
            groups = await together(
                ctx.sample(ctx.prompt_ids("\n\n" + REFINE_ASK.format(workspace=w)), self._sampling(ctx, count), round=r,
                           workspace_tokens=len(ctx.tokenizer.encode(w)))
                for w, count in zip(workspaces, counts)
            )
            drafts = [d for g in groups for d in g]
            b_seq += max(len(d.generated_ids) for d in drafts)
        candidates = [ctx.candidate(d) for d in drafts]
        chosen = candidates[0] if len(candidates) == 1 else await select_async(candidates, "majority")
        metrics = {"B_seq": b_seq, "B_tot": ctx.spent().generated_tokens, "rounds": rounds, "question_tokens": len(question_ids)}
        return ctx.result(self.name, chosen, candidates, metrics)

    async def _draft(self, ctx: StrategyContext) -> list[Node]:
        """Round 1: M_1 samples, or with a drafter M_1 runs of it (sub-runs with their own
        seeds), each run's answer a draft. Later rounds answer given the workspace, a prompt
        of their own, so they sample."""
        m = self.config.schedule[0]
        if self.drafter is None:
            return await ctx.extend(ctx.tree.root, self._sampling(ctx, m))
        runs = await together([ctx.run(self.drafter, seed=i) for i in range(m)])
        return [ctx.tree.node(c.node) for c in map(chosen_candidate, runs) if c.node is not None]

    def _sampling(self, ctx: StrategyContext, n: int):
        cfg = self.config
        return ctx.sampling(n=n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens)

    def _bound(self, ctx: StrategyContext, text: str, tokens: int) -> str:
        """The first `tokens` tokens of `text`."""
        ids = ctx.tokenizer.encode(text)
        return text if len(ids) <= tokens else ctx.tokenizer.decode(ids[:tokens])

    def _listing(self, ctx: StrategyContext, drafts: list[Node]) -> str:
        """The drafts in at most κ tokens, each cut to an equal share from its end (where its
        answer is), so no draft crowds out the others."""
        heads = [f"Attempt {i + 1}:\n" for i in range(len(drafts))]
        overhead = sum(len(ctx.tokenizer.encode(h + "\n\n")) + 2 for h in heads)  # +2: merges at the seams
        share = max(1, (self.config.workspace_tokens - overhead) // len(drafts))
        parts = []
        for head, d in zip(heads, drafts):
            ids = ctx.tokenizer.encode(d.text.strip())
            parts.append(head + (ctx.tokenizer.decode(ids[-share:]) if len(ids) > share else d.text.strip()))
        return self._bound(ctx, "\n\n".join(parts), self.config.workspace_tokens)

    async def _distill(self, ctx: StrategyContext, drafts: list[Node], m: int, rng: random.Random) -> tuple[list[str], int]:
        """Workspaces for the next round's m generators (one shared, or one each for random_k),
        and the tokens the operator itself generated."""
        cfg = self.config
        if cfg.distill == "summary":
            # the question alone (not the solve-it template), then the drafts and the ask
            prompt = ctx.prompt.model_copy(update={"template": "{question}"})
            ids = prompt.ids(ctx.tokenizer, ctx.problem, f"\n\n{self._listing(ctx, drafts)}\n\n{SUMMARY_ASK}")
            (summary,) = await ctx.sample(ids, ctx.sampling(temperature=0.0, max_tokens=cfg.workspace_tokens), role="summary")
            return [self._bound(ctx, summary.text, cfg.workspace_tokens)], len(summary.generated_ids)
        if cfg.distill == "random_k":
            return [self._listing(ctx, rng.sample(drafts, min(cfg.k, len(drafts)))) for _ in range(m)], 0
        return [self._listing(ctx, await self._top(ctx, drafts))], 0

    async def _top(self, ctx: StrategyContext, drafts: list[Node]) -> list[Node]:
        cfg = self.config
        if ctx.scorer is not None:
            scores = await together(ctx.score(d, cfg.aggregate, split_steps(d.text, ctx.delimiter)) for d in drafts)
        else:  # without a verifier, a draft's score is the share of drafts agreeing with its answer
            cands = [ctx.candidate(d) for d in drafts]
            share = {i: len(g) / len(drafts) for g in await clusters_async(cands) for i in g}
            scores = [share.get(i, 0.0) for i in range(len(drafts))]
        ranked = sorted(range(len(drafts)), key=lambda i: scores[i], reverse=True)
        return [drafts[i] for i in ranked[: cfg.k]]


class SequentialRefinement(PDR, name="sr"):
    Config: ClassVar[type[StrategyConfig]] = SRConfig

