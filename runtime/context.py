"""What a strategy sees while solving one problem: submit → await → update the tree.

The context owns the problem's ledger, allowance (budgets) and trace. Every engine request
and every verifier call goes through it, so the ledger is complete and the budgets hold
whatever the strategy does: each request first reserves what it may spend (runtime/budget.py)
and is cut to fit, and at the wall-time deadline in-flight requests are cancelled (aborted in
the engine) and come back as aborted nodes, so the strategy answers with what it has. A request
cut short is recorded as the engine reported it (the tokens it generated before the cut too).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import random
from dataclasses import replace
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence, TypeVar

from ..backends.base import Backend, Completion, Delta, FinishReason, Sampling, Usage
from ..backends.meter import usage_listener
from ..records.ledger_summary import LedgerSummary
from ..records.problem import Problem
from ..records.result import Candidate, Result
from ..records.trace import Node
from ..records.trace.observed import ObservedTrace
from ..records.trace.subtree import Subtree
from ..verifiers.answer import extract
from ..verifiers.base import ModelScorer, StepScorer, YesNoJudge, metering
from ..verifiers.confidence import TokenScorer
from ..verifiers.voting import aggregate
from .budget import Allowance, Budget, DeadlineReached, Reservation
from .emitter import Emitter
from .fanout import together
from .ledger import Ledger
from .prompt import PromptConfig
from .seeds import Seeds
from .strategy import resolve_strategy
from .thinking import note_generated

T = TypeVar("T")


def context_length(backend: Backend) -> int | None:
    """The model's context length where the backend tells it. The Backend contract has no
    query for it; VllmBackend carries it as `config.max_model_len`."""
    for holder in (backend, getattr(backend, "config", None)):
        length = getattr(holder, "max_model_len", None)
        if isinstance(length, int):
            return length
    return None


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
        emitter: Emitter | None = None,
    ) -> None:
        self.problem = problem
        self.prompt = prompt or PromptConfig()
        self._backend = backend
        self.tokenizer = backend.tokenizer
        self.scorer = scorer
        self._budget = budget or Budget()
        self._global_budget = global_budget or Budget()
        self.ledger = ledger or Ledger()
        self._problem_ledger = self.ledger  # numbers requests problem-wide, in scopes and sub-runs too
        self._allowance = Allowance(self._budget, self.ledger, self._global_budget)
        self._emitter = emitter or Emitter(problem.id)
        self.delimiter = delimiter
        self._max_len = context_length(backend)
        self.tree: ObservedTrace | Subtree = ObservedTrace(self.prompt_ids(), self._report)
        self._seeds = Seeds(seed * 1_000_003)
        self._subruns = 0
        self._judge: YesNoJudge | None = None  # asks yes/no questions when the scorer does not
        self._held: Reservation | None = None  # what a context made by `hold` holds

    def prompt_ids(self, suffix: str = "") -> list[int]:
        """The problem's prompt as the solver renders it, with `suffix` added to the user's message."""
        return self.prompt.ids(self.tokenizer, self.problem, suffix)

    def _report(self, kind: Any, node: Node, score: float | None) -> None:
        if self._emitter.active:
            self._emitter.emit(kind, node, score, self.ledger.summary())

    # -- budget ---------------------------------------------------------------------------
    def exhausted(self) -> bool:
        """A budget (the problem's or the run's) is spent or held by requests in flight."""
        return self._allowance.exhausted()

    def sampling(self, **fields: object) -> Sampling:
        """A Sampling with a fresh seed; the budget cuts max_tokens when the request is sent."""
        s = Sampling(**fields)  # type: ignore[arg-type]
        if s.seed is None and s.temperature > 0:
            # sample i of a request is seeded seed + i (Backend.generate, as vLLM does), so the
            # next request starts past all n of them: no two samples of a problem share a seed
            s = replace(s, seed=self._seeds.take(s.n))
        return s

    def _admit(self, ids: Sequence[int]) -> None:
        """Refuse a prompt the model cannot continue, before it reaches the engine."""
        if self._max_len is not None and len(ids) + 1 > self._max_len:
            raise ValueError(
                f"problem {self.problem.id}: prompt of {len(ids)} tokens leaves no room to generate "
                f"within the model's context of {self._max_len} tokens"
            )

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
        return list(zip(children, await together(self.score(c, how) for c in children)))

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
        """Always n children: samples the budget could not pay for come back empty, cut by
        `length`; samples cancelled at the deadline come back empty, `abort`ed."""
        self._admit(ids)
        reader = self.scorer if isinstance(self.scorer, TokenScorer) else None
        if reader is not None:  # it scores from the logprobs that come with the step: ask for them
            sampling = replace(sampling, logprobs=max(sampling.logprobs or 0, reader.top_logprobs))
        grant = self._allowance.reserve_tokens(sampling.n, sampling.max_tokens)
        t0 = self.tree.now()
        completions: list[Completion] = []
        cut: FinishReason = "length"
        heard: list[Usage] = []  # what the backend recorded for these requests, a cut included
        try:
            if grant.samples:
                try:
                    with usage_listener(heard.append):
                        completions = await self._allowance.within_deadline(
                            self._backend.generate(ids, replace(sampling, n=grant.samples, max_tokens=grant.max_tokens)))
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
                    note_generated(self.ledger, self.prompt.thinking, self.tokenizer, ids, [c.token_ids for c in completions], bool(attrs.get("probe")))
        finally:
            grant.reservation.release()
        # each sample is its own engine request: a node carries the cached tokens its request got
        out = [
            (self.tree.add(parent, c.token_ids, c.text, c.finish_reason, t0, prompt_ids=fresh,
                           request=self._problem_ledger.requests, cached_tokens=c.usage.cached_tokens, **attrs), c)
            for c in completions
        ]
        for _ in range(sampling.n - len(completions)):
            empty = Completion((), "", cut)
            out.append((self.tree.add(parent, (), "", cut, t0, prompt_ids=fresh, budget_cut=True, **attrs), empty))
        if reader is not None:
            for node, c in out:
                reader.note(self.tree, node, c.top_logprobs)
        return out

    async def stream(self, node: Node, sampling: Sampling) -> AsyncIterator[Delta]:
        """Stream one child of `node`; the ledger records the request, aborted or not. A stream
        the budget cannot pay for ends at once (`length`); one cut at the deadline ends with
        an `abort` delta."""
        self._admit(node.ids)
        grant = self._allowance.reserve_tokens(1, sampling.max_tokens)
        generated, cached, finished = 0, 0, False
        got: list[int] = []  # the ids read, split into thinking and answer tokens at the end
        heard: list[Usage] = []  # what the backend recorded for this request, when it was cut
        try:
            if not grant.samples:
                yield Delta((), "", "length", usage=Usage())
                return
            source = self._backend.stream(node.ids, replace(sampling, max_tokens=grant.max_tokens)).__aiter__()
            try:
                while True:
                    try:
                        with usage_listener(heard.append):
                            d = await self._allowance.within_deadline(source.__anext__())
                    except StopAsyncIteration:
                        break
                    except DeadlineReached:
                        with usage_listener(heard.append):
                            await source.aclose()
                        finished = True
                        usage = heard[-1] if heard else Usage(len(node.ids), cached, generated)
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
                note_generated(self.ledger, self.prompt.thinking, self.tokenizer, node.ids, [got], unread=unread)
            if grant.samples and not finished:
                # the engine's own count where the backend reported the cut: tokens it generated
                # that this consumer never read are spent too
                self.ledger.record(heard[-1] if heard else Usage(len(node.ids), cached, generated), aborted=True)
            grant.reservation.release()

    def done(self, node: Node) -> bool:
        """A trajectory ends on EOS, on the length cap, or with an empty step."""
        return node.finished or (node.id != self.tree.root.id and not node.step.replace(self.delimiter, "").strip())

    def prune(self, nodes: Sequence[Node]) -> None:
        """The strategy drops these nodes (reported as "pruned" events)."""
        for node in nodes:
            self.tree.set(node, pruned=True)

    # -- scoring ------------------------------------------------------------------------------
    async def score(self, node: Node, how: str = "last", steps: Sequence[str] | None = None) -> float:
        """The PRM score of the trajectory ending at `node` (or of explicit `steps`). Without a
        verifier call left (budget or deadline) the node keeps its nearest scored ancestor's
        score, marked `unscored`; a node the budget left empty is never sent to the verifier."""
        if self.scorer is None:
            raise ValueError(f"strategy needs a step scorer (set `scorer:`) for problem {self.problem.id}")
        scorer = self.scorer
        if isinstance(scorer, TokenScorer):
            # read from the path's nodes (the whole completion of one sampled in one piece):
            # no request, nothing spent, so no verifier call is reserved or counted
            value = scorer.value(self.tree, node, how)
            self.tree.set(node, score=value)
            return value
        steps = list(steps if steps is not None else self.tree.steps(node))
        scores = None
        if not self.tree.graph.nodes[node.id].get("budget_cut"):
            scores = await self.verify(lambda: scorer.score(self.problem, steps))
        if scores is None:
            value = self._inherited(node)
            self.tree.set(node, score=value, unscored=True)
            return value
        value = aggregate(scores, how)
        self.tree.set(node, score=value)
        return value

    async def verify(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """One verifier call (a PRM score, a judge's question): reserved against the verifier
        budget, its engine requests recorded in the ledger as the engine reported them, cut at
        the deadline. None when no call is left."""
        held = self._allowance.reserve_call()
        if held is None:
            return None
        try:
            with metering() as meter:
                try:
                    return await self._allowance.within_deadline(call())
                finally:
                    self.ledger.record_verifier(1, usage=meter.usage, requests=meter.requests)
        except DeadlineReached:
            return None
        finally:
            held.release()

    async def ask(self, context: str, question: str) -> float | None:
        """P(Yes) of a yes/no question: from the scorer when it is a judge, else from a judge
        on the policy's engine. One verifier call; None when none is left."""
        judge = self.scorer if isinstance(self.scorer, YesNoJudge) else self._policy_judge()
        return await self.verify(lambda: judge.p_yes(context, question))

    def _policy_judge(self) -> YesNoJudge:
        if self._judge is None:
            from ..verifiers.judge import Judge

            self._judge = Judge(self._backend)
        return self._judge

    async def critique(self, suffix: str, sampling: Sampling, **attrs: object) -> Node | None:
        """A text written by the scorer's own model (a judge) for the problem's prompt with
        `suffix`: one verifier call, its engine requests in the ledger as the engine reported
        them, and a node under the root (`by="scorer"`). None when no call is left."""
        scorer = self.scorer
        if not isinstance(scorer, ModelScorer):
            raise ValueError(f"problem {self.problem.id}: a critique needs a scorer with its own model (judge, logprob), got {type(scorer).__name__}")
        backend = scorer.backend
        ids = self.prompt.ids(backend.tokenizer, self.problem, suffix)
        t0 = self.tree.now()
        out = await self.verify(lambda: backend.generate(ids, sampling))
        if out is None:
            return None
        (c,) = out
        return self.tree.add(self.tree.root, c.token_ids, c.text, c.finish_reason, t0, prompt_ids=ids, by="scorer", **attrs)

    def spent(self) -> LedgerSummary:
        """What this context has spent so far."""
        return self.ledger.summary()

    def _inherited(self, node: Node) -> float:
        for n in reversed(self.tree.path(node)):
            s = self.tree.score(n)
            if s is not None:
                return s
        return 0.0

    def scoped(self, budget: Budget) -> "Context":
        """This context with `budget` as a limit of its own on everything done through it (a
        search's token or verifier-call budget): the same tree and problem; requests reserve
        from this scope as from the problem's and the run's budgets, so none overshoots. The
        scope's ledger feeds this one."""
        child = copy.copy(self)
        child.ledger = Ledger(parent=self.ledger)
        child._allowance = self._allowance.scoped(budget, child.ledger)
        child._held = None  # a hold is released by the context that took it only
        return child

    def hold(self, n: int, max_tokens: int, calls: int = 0) -> tuple["Context", int] | None:
        """Hold up front what a piece of work needs, or None when it cannot all be paid for: n
        samples of up to `max_tokens` each (fewer tokens each when less is left) and `calls`
        verifier calls. Returns a context that spends only from the hold, and the tokens each
        sample got; the context's `release()` gives back what the work did not use."""
        ledger = Ledger(parent=self.ledger)
        held = self._allowance.hold(n, max_tokens, calls, ledger)
        if held is None:
            return None
        allowance, per, reservation = held
        child = copy.copy(self)
        child.ledger, child._allowance, child._held = ledger, allowance, reservation
        return child, per

    def release(self) -> None:
        """Give back a hold (`hold`); a no-op for a context that holds nothing."""
        if self._held is not None:
            self._held.release()

    def random(self, salt: object = 0) -> random.Random:
        """A random generator drawn from the problem's seed stream (the run's seed, this
        problem, this sub-run) and `salt`: every random choice of a strategy comes from one,
        so problems differ and reruns repeat. It takes no seed from the requests' stream."""
        key = f"{self._seeds.start}/{self.problem.id}/{salt}".encode()
        return random.Random(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big"))

    # -- sub-runs -----------------------------------------------------------------------------
    async def run(self, strategy: Any, *, seed: int | None = None, **config: object) -> Result:
        """Another strategy (an instance, a registered name with `config`, or a StrategySpec)
        solving this problem in its own subtree, under a node marking the sub-run; its Result.
        It spends from this problem's allowance (the budgets hold for both together) and
        records into a ledger of its own that feeds this one, so its Result counts its own
        spend and this problem's ledger counts everything. `seed` numbers its seed stream
        (default: one per sub-run of this context); no seed of the problem is drawn twice."""
        sub = resolve_strategy(strategy, config)
        index = self._subruns if seed is None else seed
        self._subruns += 1
        marker = self.tree.add(self.tree.root, (), "", None, self.tree.now(), subrun=sub.name, seed=index)
        child = copy.copy(self)
        child.tree = Subtree(self.tree, marker)
        child.ledger = Ledger(parent=self.ledger)
        child._seeds = self._seeds.child(index)
        child._subruns = 0
        child._held = None
        return await sub.run(child)

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
        """The Result; an empty choice (a budget ran out) becomes the best complete candidate,
        else the best partial one, else the best trajectory in the tree: never an empty answer
        while any text exists."""
        candidates = list(candidates)
        if chosen is None or not chosen.text.strip():
            better = _best([c for c in candidates if c.text.strip()]) or self._best_in_tree()
            if better is not None:
                if all(c.node != better.node for c in candidates):
                    candidates.insert(0, better)
                chosen = better
        if chosen is not None and chosen.node is not None:
            self.tree.set(self.tree.node(chosen.node), chosen=True)
        self.tree.prune_unused({c.node for c in candidates if c.node is not None} | ({chosen.node} if chosen and chosen.node is not None else set()))
        return Result(
            problem_id=self.problem.id, strategy=strategy,
            answer=chosen.answer if chosen else "", text=chosen.text if chosen else "",
            candidates=tuple(candidates), ledger=self.ledger.summary(), trace=self.tree,
            metrics=dict(metrics or {}),
        )

    def _best_in_tree(self) -> Candidate | None:
        nodes = [self.tree.node(i) for i in self.tree.graph.nodes if i != 0]
        return _best([self.candidate(n, self.tree.score(n)) for n in nodes if n.text.strip()])


def _best(candidates: Sequence[Candidate]) -> Candidate | None:
    """Complete (EOS) before partial, then the higher score, then the longer text."""
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c.finish == "eos", c.score if c.score is not None else float("-inf"), len(c.text)))


def _cut_usage(heard: Sequence[Usage], prompt_tokens: int, samples: int) -> Usage:
    """What `samples` requests cut short spent: what the backend recorded for them (tokens
    generated before the cut included), and their prompts for those it recorded nothing of
    (an HTTP server tells nothing about a request its client left)."""
    return sum(heard, Usage()) + Usage(prompt_tokens * max(0, samples - len(heard)))
