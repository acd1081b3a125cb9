"""One API request solved: the client's sampling fields mapped onto the strategy, the whole
conversation as the prompt, the request's limits on every engine call, and n choices.

`n` choices are the strategy's top n candidates (the chosen one first, then by votes for
their answer, then by score) when it returns at least n; otherwise n independent solves with
consecutive seeds, one choice each. Without a client seed the request gets a random one, so
two unseeded requests differ as they do on OpenAI; the same seed gives the same text.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import random
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ...backends.base import Backend
from ...records.ledger_summary import LedgerSummary
from ...records.problem import Problem
from ...records.result import Candidate, Result
from ...runtime.budget import Budget
from ...runtime.solver import Solver
from ...runtime.spending import context_length
from ...runtime.thinking import ThinkingConfig
from ...strategies.base import make_strategy, strategy_class
from ...verifiers.voting import clusters_async
from .conversation import prompt_for
from .openai_api import ApiError, ApiRequest, Choice
from .reasoning import EFFORTS, ReasoningFollower, budget_of, split_choice, with_budget
from .request_limits import LimitedBackend, RequestLimits

Emit = Callable[[dict[str, Any]], None]  # must not block: progress is queued, not awaited
SAMPLE_CAPS = ("max_tokens", "final_tokens")  # fields that cap one sample's (or the answer's) length


def strategy_config(name: str, request: ApiRequest) -> dict[str, Any]:
    """The request's `ponder` fields, with the standard sampling fields applied to the
    strategy's config fields of the same meaning (those it has)."""
    fields = strategy_class(name).Config.model_fields
    config = dict(request.ponder)
    if request.temperature is not None and "temperature" in fields:
        config["temperature"] = request.temperature
    if request.top_p is not None and "top_p" in fields:
        config["top_p"] = request.top_p
    if request.max_tokens is not None:
        for f in SAMPLE_CAPS:
            # a field that defaults to None is a search budget (a_star), not a sample cap
            if f in fields and config.get(f, fields[f].default) is not None:
                config[f] = request.max_tokens
        if "step_tokens" in fields:
            config["step_tokens"] = min(int(config.get("step_tokens", fields["step_tokens"].default)), request.max_tokens)
    return config


async def ranked(result: Result) -> list[Candidate]:
    """The chosen candidate first, then the rest by votes for their answer, then by score."""
    cands = list(result.candidates)
    votes = {i: len(g) for g in await clusters_async(cands) for i in g}
    chosen = next((i for i, c in enumerate(cands) if c.text == result.text), None)
    order = sorted(
        (i for i in range(len(cands)) if i != chosen),
        key=lambda i: (-votes.get(i, 0), -(cands[i].score if cands[i].score is not None else float("-inf")), i),
    )
    head = [Candidate(text=result.text, answer=result.answer)] if chosen is None else [cands[chosen]]
    return head + [cands[i] for i in order]


def event_payload(event: Any, choice: int) -> dict[str, Any] | None:
    """A runtime Event as the `ponder` field of a chunk. "done" is not sent: its result becomes
    the answer's text."""
    if event.kind == "done":
        return None
    return {
        "choice": choice, "event": event.kind, "node": event.node, "parent": event.parent, "step": event.step,
        "score": event.score, "finish": event.finish, "ledger": event.ledger.as_dict(),
    }


@dataclass(frozen=True)
class Outcome:
    choices: tuple[Choice, ...]
    ledger: LedgerSummary
    extra: Mapping[str, Any]
    trace: Any = None  # the first solve's reasoning tree (GET /view shows it)


class ApiJob:
    def __init__(self, backend: Backend, request: ApiRequest, strategy: str, scorer: Any, budget: int | None,
                 thinking: ThinkingConfig | None = None, efforts: Mapping[str, int] | None = None) -> None:
        self.request = request
        self.name = strategy
        try:
            config = strategy_config(strategy, request)
            thinking_budget = budget_of(request, efforts or EFFORTS)
            self.strategy = make_strategy(strategy, **(config if thinking_budget is None else with_budget(strategy, config, thinking_budget)))
        except ValueError as e:
            raise ApiError(400, str(e), "model" if "unknown strategy" in str(e) else "ponder") from None
        if self.strategy.needs_scorer and scorer is None:
            raise ApiError(400, f"strategy {strategy} needs a step scorer (field `scorer`)", "scorer")
        self.scorer = scorer
        self.seed = request.seed if request.seed is not None else random.randrange(2**31)
        self.prompt = prompt_for(tuple((m.role, m.content) for m in request.messages), request.prompt)
        # a thinking budget needs a thinking block: the assistant turn opens one (unless the template does)
        self.thinking = thinking or (ThinkingConfig(prefill=True) if thinking_budget is not None else None)
        if self.thinking is not None:
            self.prompt = self.prompt.model_copy(update={"thinking": self.thinking})
        self.problem = Problem(id=uuid.uuid4().hex[:12], question=request.question)
        self.budget = Budget(generated_tokens=budget) if budget else Budget()
        base = self.prompt.ids(backend.tokenizer, self.problem)
        room = context_length(backend)
        if room is not None and len(base) >= room:
            field = "prompt" if request.prompt is not None else "messages"
            raise ApiError(400, f"{field}: the prompt is {len(base)} tokens; the model's context is {room}", field, code="context_length_exceeded")
        self.backend = LimitedBackend(backend, RequestLimits(request.max_tokens, budget, request.stop, room), base)
        self.prompt_ids = base
        self.open = self.thinking is not None and self.thinking.is_open(backend.tokenizer.decode(base[-64:]))

    def limit(self, verifier_calls: int | None, seconds: float | None) -> None:
        """The server's caps on everything this request causes, besides the generated tokens
        (its LimitedBackend): verifier calls and wall time per solve, and a scorer that reads
        from the server's engine reading through this request's LimitedBackend, so what it
        generates (a critique) comes out of the same token cap as the policy's samples."""
        self.budget = self.budget.model_copy(update={"verifier_calls": verifier_calls, "wall_s": seconds})
        if self.scorer is not None and getattr(self.scorer, "backend", None) is self.backend.inner:
            self.scorer = copy.copy(self.scorer)  # per request; what it remembers stays shared
            self.scorer.backend = self.backend

    def _solver(self, seed: int) -> Solver:
        return Solver(self.backend, self.strategy, self.scorer, self.prompt, budget=self.budget, global_budget=self.budget, seed=seed)

    async def _solve(self, seed: int, choice: int, emit: Emit | None) -> Result:
        solver = self._solver(seed)
        if emit is not None and "on_event" in inspect.signature(solver.solve).parameters:
            def on_event(event: Any) -> None:
                payload = event_payload(event, choice)
                if payload is not None:
                    emit(payload)

            return await solver.solve(self.problem, on_event=on_event)  # type: ignore[call-arg]
        return await solver.solve(self.problem)

    def choice(self, c: Candidate) -> Choice:
        """Text cut before the first client stop string (OpenAI leaves it out); the finish as OpenAI names it."""
        cut = min((i for i in (c.text.find(s) for s in self.request.stop) if i >= 0), default=-1)
        if cut >= 0:
            out = Choice(c.text[:cut], "stop", c.answer, c.tokens)
        else:
            out = Choice(c.text, "length" if c.finish in ("length", "abort") else "stop", c.answer, c.tokens)
        return split_choice(out, self.thinking, self.open) if self.thinking is not None and self.request.messages else out

    async def run(self, emit: Emit | None = None, first: Callable[[Choice], None] | None = None) -> Outcome:
        """Solve; `emit` receives progress, `first` the first choice as soon as it is known."""
        n = self.request.n
        if emit is not None and self.thinking is not None and self.request.messages and n == 1 and getattr(self.strategy.config, "n", 1) == 1:
            # one sample: its thinking goes to the client as it grows
            self.backend.observer = ReasoningFollower(self.thinking, self.backend.tokenizer, self.prompt_ids, emit)
        result = await self._solve(self.seed, 0, emit)
        top = await ranked(result)
        head = self.choice(top[0])
        if first is not None:
            first(head)
        if len(top) >= n:
            choices = [head] + [self.choice(c) for c in top[1:n]]
            ledger = result.ledger
            answers: Sequence[str] = [c.answer for c in result.candidates]
        else:
            more = await asyncio.gather(*(self._solve(self.seed + i, i, emit) for i in range(1, n)))
            choices = [head] + [self.choice((await ranked(r))[0]) for r in more]
            ledger = sum((r.ledger for r in more), result.ledger)
            answers = [c.answer for r in (result, *more) for c in r.candidates]
        extra = {"answer": result.answer, "answers": [c.answer for c in choices], "tokens": [c.tokens for c in choices], "candidates": list(answers),
                 "ledger": ledger.as_dict(), "metrics": dict(result.metrics), "seed": self.seed}
        return Outcome(tuple(choices), ledger, extra, result.trace)
