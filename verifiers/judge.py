"""An LLM judge: P(Yes) vs P(No) for a yes/no question, read prefill-only from the engine.

Used as an outcome verifier (is this answer right?), as a step scorer (is this step right?)
and by TrimR (has this thought reached an answer? is it the same answer as before?).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import ClassVar, Sequence

from pydantic import BaseModel, ConfigDict

from ..backends.base import Backend
from ..records.problem import Problem
from .answer import extract
from .base import Verdict
from .logprob import two_way


class JudgeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    yes: str = "Yes"
    no: str = "No"
    outcome_question: str = "Is this solution correct?"
    step_question: str = "Is the last step correct?"
    threshold: float = 0.5
    memo_size: int = 4096  # step prefixes whose P(Yes) is remembered


class Judge:
    needs_backend: ClassVar[bool] = True  # make_scorer passes the engine to read from

    def __init__(self, backend: Backend, config: JudgeConfig | None = None, **options: object) -> None:
        self.backend = backend
        self.config = config or JudgeConfig(**options)  # type: ignore[arg-type]
        tok = backend.tokenizer
        self._yes, self._no = tok.encode(self.config.yes)[0], tok.encode(self.config.no)[0]
        if self._yes == self._no:
            raise ValueError("judge: yes and no words start with the same token")
        self._memo: OrderedDict[tuple, float] = OrderedDict()

    async def p_yes(self, context: str, question: str) -> float:
        """P(Yes) renormalised over {Yes, No} for `question` asked about `context`."""
        content = f"{context}\n\n{question} Answer {self.config.yes} or {self.config.no}."
        ids = self.backend.tokenizer.chat([{"role": "user", "content": content}])
        yes, no = await self.backend.next_token_logprobs(ids, [self._yes, self._no])
        return two_way(yes, no)

    async def verify(self, problem: Problem, response: str) -> Verdict:
        p = await self.p_yes(f"Problem: {problem.question}\n\nSolution: {response}", self.config.outcome_question)
        return Verdict(p >= self.config.threshold, p, extract(response, problem.choices).text)

    async def score(self, problem: Problem, steps: Sequence[str]) -> list[float]:
        """P(Yes) for each prefix of `steps`. A prefix's answer is remembered and the new ones
        are asked concurrently, so a search that scores a trajectory after every step asks
        O(steps) questions, not O(steps²)."""
        return list(await asyncio.gather(*(self._prefix(problem, tuple(steps[: k + 1])) for k in range(len(steps)))))

    async def _prefix(self, problem: Problem, steps: tuple[str, ...]) -> float:
        key = (problem.id, problem.question, steps)
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        shown = "\n\n".join(s.strip() for s in steps)
        p = await self.p_yes(f"Problem: {problem.question}\n\nSolution so far: {shown}", self.config.step_question)
        self._memo[key] = p
        if len(self._memo) > self.config.memo_size:
            self._memo.popitem(last=False)
        return p
