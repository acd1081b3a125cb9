"""Self-Refine (Madaan et al. 2023): answer, critique, revise, until the critique finds no error.

Round 0 answers the question (a continuation of the problem's prompt). Each later round asks
for feedback on the latest answer (concrete errors, or the stop phrase when there are none)
and, unless the feedback says there is none, asks for a revised answer given the earlier
attempts and their feedback (`history: all`, as in the paper, or only the last). Feedback
comes from the policy, or (`feedback: scorer`) from the scorer's own backend, a judge model,
whose requests are counted in the ledger as verifier calls. Every prompt is the run's
PromptConfig with the request added to the user's message. The answer is the last revision.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..records.result import Result
from ..records.trace import Node
from ..runtime.contract import StrategyContext
from ..verifiers.base import ModelScorer
from .base import Configured, StrategyConfig

FEEDBACK_ASK = (
    "\n\nHere is a solution to this problem:\n\n{answer}\n\nCheck it step by step. List every concrete error "
    "(a wrong calculation, a wrong step, a wrong final answer), quoting the step it is in. "
    "If there is no error, reply only: {stop}"
)
REFINE_ASK = (
    "\n\nEarlier attempts at this problem, each with feedback on it:\n\n{history}\n\n"
    "Write an improved solution that fixes every error the feedback names."
)


class SelfRefineConfig(StrategyConfig):
    max_rounds: int = Field(3, ge=1)  # feedback-and-revise rounds after the first answer
    feedback: Literal["policy", "scorer"] = "policy"
    history: Literal["all", "last"] = "all"
    stop_phrase: str = Field("NO ERRORS", min_length=1)  # feedback containing it ends the loop
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1)  # per answer
    feedback_tokens: int = Field(512, ge=1)


class SelfRefine(Configured[SelfRefineConfig], name="self_refine"):
    async def run(self, ctx: StrategyContext) -> Result:
        cfg = self.config
        if cfg.feedback == "scorer" and not isinstance(ctx.scorer, ModelScorer):
            raise ValueError(f"self_refine: feedback: scorer needs a scorer with its own model (judge, logprob), got {type(ctx.scorer).__name__}")
        (answer,) = await ctx.extend(ctx.tree.root, self._sampling(ctx, cfg.max_tokens), round=0, role="answer")
        answers: list[Node] = [answer]
        history: list[str] = []
        stopped = 0
        for r in range(1, cfg.max_rounds + 1):
            if ctx.exhausted():
                break
            feedback = await self._feedback(ctx, r, answer.text.strip())
            if feedback is None:  # the verifier budget or the deadline left no critique
                break
            if cfg.stop_phrase.lower() in feedback.text.lower():
                stopped = 1
                break
            history.append(f"Attempt {r}:\n{answer.text.strip()}\n\nFeedback on attempt {r}:\n{feedback.text.strip()}")
            if ctx.exhausted():
                break
            shown = "\n\n".join(history if cfg.history == "all" else history[-1:])
            (answer,) = await ctx.sample(ctx.prompt_ids(REFINE_ASK.format(history=shown)), self._sampling(ctx, cfg.max_tokens), round=r, role="answer")
            answers.append(answer)
        candidates = [ctx.candidate(a) for a in answers]
        metrics = {"rounds": len(answers) - 1, "no_error": stopped, "feedback_by_scorer": int(cfg.feedback == "scorer")}
        return ctx.result(self.name, candidates[-1], candidates, metrics)

    def _sampling(self, ctx: StrategyContext, max_tokens: int):
        return ctx.sampling(temperature=self.config.temperature, top_p=self.config.top_p, max_tokens=max_tokens)

    async def _feedback(self, ctx: StrategyContext, r: int, answer: str) -> Node | None:
        cfg = self.config
        suffix = FEEDBACK_ASK.format(answer=answer, stop=cfg.stop_phrase)
        sampling = self._sampling(ctx, cfg.feedback_tokens)
        if cfg.feedback == "policy":
            (node,) = await ctx.sample(ctx.prompt_ids(suffix), sampling, round=r, role="feedback")
            return node
        # the scorer's model (a judge) writes the critique: a verifier call, budgeted, and a node of the trace
        return await ctx.critique(suffix, sampling, round=r, role="feedback")
