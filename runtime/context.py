"""What a strategy sees while solving one problem: submit → await → update the tree.

The context owns the problem's ledger, budget and trace. Every engine request and every
verifier call goes through it, so the ledger is complete whatever the strategy does.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from typing import AsyncIterator, Mapping, Sequence

from ..backends.base import Backend, Completion, Delta, Sampling, Usage
from ..verifiers.answer import extract
from ..verifiers.base import StepScorer
from ..verifiers.voting import aggregate
from .budget import Budget
from .ledger import Ledger
from ..records.problem import Problem
from .prompt import PromptConfig
from ..records.result import Candidate, Result
from ..records.trace import Node, Trace


class Context:
    def __init__(
        self,
        problem: Problem,
        backend: Backend,
        scorer: StepScorer | None = None,
        budget: Budget | None = None,
        ledger: Ledger | None = None,
        global_budget: Budget | None = None,
        seed: int = 0,
        delimiter: str = "\n\n",
        prompt: PromptConfig | None = None,
    ) -> None:
        self.problem = problem
        self.prompt = prompt or PromptConfig()
        self.backend = backend
        self.tokenizer = backend.tokenizer
        self.scorer = scorer
        self.budget = budget or Budget()
        self.global_budget = global_budget or Budget()
        self.ledger = ledger or Ledger()
        self.delimiter = delimiter
        self.tree = Trace(self.prompt_ids())
        self._seeds = itertools.count(seed * 1_000_003)

    def prompt_ids(self, suffix: str = "") -> list[int]:
        """The problem's prompt as the solver renders it, with `suffix` added to the user's message."""
        return self.prompt.ids(self.tokenizer, self.problem, suffix)

    # -- budget ---------------------------------------------------------------------------
    def exhausted(self) -> bool:
        glob = self.ledger.parent
        return self.budget.exhausted(self.ledger) or (glob is not None and self.global_budget.exhausted(glob))

    def sampling(self, **fields: object) -> Sampling:
        """A Sampling with a fresh seed, max_tokens capped by what the budget has left."""
        s = Sampling(**fields)  # type: ignore[arg-type]
        left = self.budget.tokens_left(self.ledger)
        if left is not None:
            s = replace(s, max_tokens=max(1, min(s.max_tokens, left // s.n or 1)))
        if s.seed is None and s.temperature > 0:
            s = replace(s, seed=next(self._seeds))
        return s

    # -- generation -------------------------------------------------------------------------
    def step_sampling(self, n: int, temperature: float, top_p: float, step_tokens: int, final_tokens: int, last: bool) -> Sampling:
        """One reasoning step (up to and including the delimiter), or on the last allowed step
        the rest of the answer."""
        return self.sampling(
            n=n, temperature=temperature, top_p=top_p, max_tokens=final_tokens if last else step_tokens,
            stop=() if last else (self.delimiter,),
        )

    async def expand(self, node: Node, sampling: Sampling, how: str = "last") -> list[tuple[Node, float]]:
        """Children of `node`, each scored by the PRM as soon as their request returns."""
        children = await self.extend(node, sampling)
        return list(zip(children, await asyncio.gather(*(self.score(c, how) for c in children))))

    async def extend(self, node: Node, sampling: Sampling, **attrs: object) -> list[Node]:
        """n children of `node`, continuing its exact token ids."""
        return [n for n, _ in await self.extend_with(node, sampling, **attrs)]

    async def extend_with(self, node: Node, sampling: Sampling, **attrs: object) -> list[tuple[Node, Completion]]:
        """Like `extend`, with each child's Completion (logprobs and all)."""
        return await self._request(node, node.ids, sampling, None, attrs)

    async def sample(self, prompt_ids: Sequence[int], sampling: Sampling, **attrs: object) -> list[Node]:
        """n samples from a fresh prompt (not a continuation of the tree), attached under the root."""
        return [n for n, _ in await self._request(self.tree.root, prompt_ids, sampling, prompt_ids, attrs)]

    async def _request(
        self, parent: Node, ids: Sequence[int], sampling: Sampling, fresh: Sequence[int] | None, attrs: dict,
    ) -> list[tuple[Node, Completion]]:
        t0 = self.tree.now()
        completions = await self.backend.generate(ids, sampling)
        usage = sum((c.usage for c in completions), Usage())
        self.ledger.record(usage)
        meta = {"request": self.ledger.requests, "cached_tokens": usage.cached_tokens, **attrs}
        return [(self.tree.add(parent, c.token_ids, c.text, c.finish_reason, t0, prompt_ids=fresh, **meta), c) for c in completions]

    async def stream(self, node: Node, sampling: Sampling) -> AsyncIterator[Delta]:
        """Stream one child of `node`; the ledger records the request, aborted or not."""
        generated, finished = 0, False
        try:
            async for d in self.backend.stream(node.ids, sampling):
                generated += len(d.token_ids)
                if d.usage is not None:
                    finished = True
                    self.ledger.record(d.usage, aborted=d.finish_reason == "abort")
                yield d
        finally:
            if not finished:
                self.ledger.record(Usage(len(node.ids), 0, generated), aborted=True)

    def done(self, node: Node) -> bool:
        """A trajectory ends on EOS, on the length cap, or with an empty step."""
        return node.finished or (node.id != 0 and not node.step.replace(self.delimiter, "").strip())

    # -- scoring ------------------------------------------------------------------------------
    async def score(self, node: Node, how: str = "last", steps: Sequence[str] | None = None) -> float:
        """The PRM score of the trajectory ending at `node` (or of explicit `steps`)."""
        if self.scorer is None:
            raise ValueError(f"strategy needs a step scorer (set `scorer:`) for problem {self.problem.id}")
        steps = list(steps if steps is not None else self.tree.steps(node))
        scores = await self.scorer.score(self.problem, steps)
        self.ledger.record_verifier(1, len(self.tokenizer.encode("".join(steps))))
        value = aggregate(scores, how)
        self.tree.set(node, score=value)
        return value

    # -- answers ------------------------------------------------------------------------------
    def candidate(self, node: Node, score: float | None = None) -> Candidate:
        return Candidate(
            text=node.text, answer=extract(node.text, self.problem.choices).text, score=score,
            finish=node.finish, tokens=len(node.generated_ids), node=node.id,
        )

    def result(
        self, strategy: str, chosen: Candidate | None, candidates: Sequence[Candidate],
        metrics: Mapping[str, float] | None = None,
    ) -> Result:
        if chosen is not None and chosen.node is not None:
            self.tree.set(self.tree.node(chosen.node), chosen=True)
        return Result(
            problem_id=self.problem.id, strategy=strategy,
            answer=chosen.answer if chosen else "", text=chosen.text if chosen else "",
            candidates=tuple(candidates), ledger=self.ledger.summary(), trace=self.tree,
            metrics=dict(metrics or {}),
        )
