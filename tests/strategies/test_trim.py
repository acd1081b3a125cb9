"""TrimR: cuts overthinking and underthinking and steers from the exact prefix; its judge's calls
run concurrently, a failed call is retried once and then skipped."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.verifiers.judge import Judge

from ..traces import attrs, nodes

PROBLEM = Problem(id="trim", question="What is 3 + 4?", answer="7")


class FlakyJudge:
    """Reaches an answer when the thought says 'answer is'; answers agree when equal. Raises
    on the 'reached?' question for thoughts containing 'FLAKY', `failures` times for each."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.raised: dict[str, int] = {}
        self.calls = 0

    async def p_yes(self, context: str, question: str) -> float:
        self.calls += 1
        if "FLAKY" in context and self.raised.get(context, 0) < self.failures:
            self.raised[context] = self.raised.get(context, 0) + 1
            raise RuntimeError("judge engine hiccup")
        if "same" in question:
            a, b = [line.split(": ", 1)[1] for line in context.splitlines()[:2]]
            return 0.9 if a == b else 0.1
        return 0.9 if "answer is" in context else 0.1


def steered(thinking: str) -> ScriptedBackend:
    return ScriptedBackend(lambda c: "\\boxed{7}" if c.generated.endswith("**Final Answer**\n") else thinking, token_delay_s=0.001)


# thought 0 answers 7, thought 1 is the flaky one, thought 2 answers 7 again: converged at thought 2
THINKING = "So the answer is 7." + "\n\nWait, FLAKY the answer is 7." + "\n\nWait, again the answer is 7." + "\n\nHmm, more words here." * 8


async def test_a_judge_call_that_fails_twice_is_recorded_and_detection_goes_on():
    judge = FlakyJudge(failures=2)
    r = await Solver(steered(THINKING), make_strategy("trim", agree=2, max_thoughts=10), judge).solve(PROBLEM)
    assert r.metrics["overthinking"] == 1 and r.metrics["thoughts"] == 3  # cut when thought 2 agreed with thought 0
    assert r.metrics["judge_failures"] == 1 and r.metrics["judge_retries"] == 1
    (streamed,) = [a for _, a in r.trace.graph.nodes(data=True) if a.get("decision") == "overthinking"]
    assert streamed["judge_failures"] == ["RuntimeError: judge engine hiccup"]
    assert r.answer == "7" and r.ledger.verifier_calls == 4 == judge.calls  # failed tries count too


async def test_a_judge_call_that_fails_once_is_retried():
    judge = FlakyJudge(failures=1)
    r = await Solver(steered(THINKING), make_strategy("trim", agree=2, max_thoughts=10), judge).solve(PROBLEM)
    assert r.metrics["overthinking"] == 1 and r.metrics["thoughts"] == 2  # thought 1 (after its retry) agreed with thought 0
    assert r.metrics["judge_failures"] == 0 and r.metrics["judge_retries"] == 1
    assert r.ledger.verifier_calls == 3 == judge.calls


class SlowSameJudge:
    """Every thought reaches a different answer; 'same?' calls take 150 ms and say no. Records
    how many 'same?' calls were in flight at once."""

    def __init__(self) -> None:
        self.in_flight = self.most = self.same_calls = 0

    async def p_yes(self, context: str, question: str) -> float:
        if "same" not in question:
            return 0.9
        self.same_calls += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.15)
        self.in_flight -= 1
        return 0.1


async def test_judge_calls_run_concurrently():
    wander = "".join(f"\n\nWait, maybe the answer is {i}{i}." for i in range(1, 12))
    judge = SlowSameJudge()
    r = await Solver(steered(wander), make_strategy("trim", max_thoughts=9, repeats=50), judge).solve(PROBLEM)
    assert r.metrics["underthinking"] == 1 and judge.same_calls >= 4
    assert judge.most >= 3  # thoughts arrive every ~30 ms: 'same?' calls overlap instead of queueing


class RuleJudge:
    """Judge stand-in: a thought reaches an answer if it says 'answer is'; two answers agree if equal."""

    def __init__(self) -> None:
        self.questions: list[str] = []

    async def p_yes(self, context: str, question: str) -> float:
        self.questions.append(question)
        if "same" in question:
            a, b = [line.split(": ", 1)[1] for line in context.splitlines()[:2]]
            return 0.9 if a == b else 0.1
        return 0.9 if "answer is" in context else 0.1

    async def score(self, problem, steps):
        return [0.5] * len(steps)


async def test_trim_cuts_overthinking_and_steers_from_the_exact_prefix():
    thinking = "Let me add. 3 + 4 = 7, so the answer is 7." + "\n\nWait, check again: the answer is 7." * 6 + "\n\nDone \\boxed{7}"
    b = ScriptedBackend(lambda c: "\\boxed{7}" if c.generated.endswith("**Final Answer**\n") else thinking, token_delay_s=0.002)
    judge = RuleJudge()
    r = await Solver(b, make_strategy("trim", agree=2), judge).solve(PROBLEM)
    assert r.metrics["overthinking"] == 1 and r.metrics["trimmed"] == 1
    streamed = nodes(r, decision="overthinking")
    (n, a) = streamed[0]
    assert a["finish"] == "abort" and a["tokens"] < len(thinking)  # cut before the end
    assert r.ledger.aborted_requests == 1
    final_prompt = b.calls[-1].prompt
    assert final_prompt == b.calls[0].prompt + r.trace.node(n).step + "\n\n**Final Answer**\n"  # exact prefix + steering
    # two 'reached an answer?' calls; '7' and '7' agree by the rule-based check, without a judge call
    assert r.answer == "7" and r.ledger.verifier_calls == 2 == len(judge.questions)
    assert not any("same" in q for q in judge.questions)


async def test_trim_underthinking_and_repetition():
    wander = "Hmm." + "".join(f"\n\nBut maybe {i} is it." for i in range(40))
    b = ScriptedBackend(lambda c: "\\boxed{1}" if "Final Answer" in c.generated else wander)
    r = await Solver(b, make_strategy("trim", max_thoughts=5), RuleJudge()).solve(PROBLEM)
    assert r.metrics["underthinking"] == 1 and r.metrics["thoughts"] == 5
    loop = "I think " + "we go around again and again. " * 50
    b = ScriptedBackend(lambda c: "\\boxed{1}" if "Final Answer" in c.generated else loop)
    r = await Solver(b, make_strategy("trim", ngram=8, repeats=3), RuleJudge()).solve(PROBLEM)
    assert r.metrics["repetition"] == 1 and r.answer == "1"


LONG = Problem(id="long", question="Explain step by step how to compute 12 + 7, then check your work twice.", answer="19")


@pytest.mark.engine
async def test_trim_steers_from_the_exact_prefix_with_a_real_judge(engine):
    # a quarter of 64 tokens: the explanation asked for is longer, so the underthinking rule cuts it
    s = Solver(engine, make_strategy("trim", max_tokens=64, underthink_ratio=0.25, final_tokens=32), Judge(engine), seed=5)
    r = await s.solve(LONG)
    (streamed,) = [(n, a) for n, a in r.trace.graph.nodes(data=True) if a["depth"] == 1]
    assert r.metrics["trimmed"] == 1 and r.metrics["judge_failures"] == 0
    assert streamed[1]["finish"] == "abort" and r.ledger.aborted_requests == 1
    (steer,) = [n for n, _ in attrs(r, "steer")]
    steer_node, stream_node = r.trace.node(steer), r.trace.node(streamed[0])
    assert steer_node.ids == stream_node.ids + tuple(engine.tokenizer.encode("\n\n**Final Answer**\n"))
    (final,) = r.trace.graph.successors(steer)
    assert r.trace.node(final).ids[: len(steer_node.ids)] == steer_node.ids
    assert r.text
