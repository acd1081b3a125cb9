"""What a strategy sees while solving one problem: submit → await → update the tree.

The context implements the strategy contract (runtime/contract.py). It owns the problem's
ledger, allowance (budgets) and trace. Every engine request and every verifier call goes
through it, so the ledger is complete and the budgets hold whatever the strategy does: each
request is reserved, cut to fit and recorded by runtime/spending.py, and one cut at the
wall-time deadline comes back as an aborted node, so the strategy answers with what it has.
"""

from __future__ import annotations

import copy
import hashlib
import random
from dataclasses import replace
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence, TypeVar

from ..backends.base import Backend, Completion, Delta, Sampling
from ..records.ledger_summary import LedgerSummary
from ..records.problem import Problem
from ..records.result import Candidate, Result
from ..records.trace import Node
from ..records.trace.observed import ObservedTrace
from ..records.trace.subtree import Subtree
from ..verifiers.base import ModelScorer, StepScorer, YesNoJudge
from ..verifiers.confidence import TokenScorer
from ..verifiers.voting import aggregate
from .budget import Allowance, Budget, Reservation
from .emitter import Emitter
from .fanout import together
from .ledger import Ledger
from .outcome import candidate_of, outcome
from .spending import Spending, context_length
from .prompt import PromptConfig
from .seeds import Seeds
from .strategy import resolve_strategy

T = TypeVar("T")


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
        engine = self._spending()
        engine.admit(ids)
        reader = self.scorer if isinstance(self.scorer, TokenScorer) else None
        if reader is not None:  # it scores from the logprobs that come with the step: ask for them
            sampling = replace(sampling, logprobs=max(sampling.logprobs or 0, reader.top_logprobs))
        t0 = self.tree.now()
        completions, cut = await engine.generate(ids, sampling, bool(attrs.get("probe")))
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

    def stream(self, node: Node, sampling: Sampling) -> AsyncIterator[Delta]:
        """Stream one child of `node`; the ledger records the request, aborted or not. A stream
        the budget cannot pay for ends at once (`length`); one cut at the deadline ends with
        an `abort` delta."""
        return self._spending().stream(node.ids, sampling)

    def _spending(self) -> Spending:
        """Engine requests and verifier calls as this context pays for them (its own ledger and allowance)."""
        return Spending(self._backend, self._allowance, self.ledger, self.prompt.thinking, self.tokenizer,
                              self.problem.id, self._max_len)

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
        return await self._spending().verifier_call(call)

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

    # -- answers (runtime/outcome.py) ---------------------------------------------------------
    def candidate(self, node: Node, score: float | None = None) -> Candidate:
        """The candidate answer of the trajectory ending at `node`."""
        return candidate_of(self.problem, node, score)

    def result(
        self, strategy: str, chosen: Candidate | None, candidates: Sequence[Candidate],
        metrics: Mapping[str, float] | None = None,
    ) -> Result:
        """The Result; an empty choice (a budget ran out) becomes the best text in the tree."""
        return outcome(self.problem, self.tree, self.ledger.summary(), strategy, chosen, candidates, metrics)
