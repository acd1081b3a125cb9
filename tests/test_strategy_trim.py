"""TrimR's judge: calls run concurrently, a failed call is retried once and then skipped
without stopping the detection."""

from __future__ import annotations

import asyncio

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy

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
