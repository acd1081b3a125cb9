"""Self-Refine: answer, feedback, revision; stops on 'no error' or after max_rounds."""

from __future__ import annotations

import pytest

from ponder.backends.scripted import ScriptCall, ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.budget import Budget
from ponder.runtime.prompt import PromptConfig
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy

from ..scripts import KeywordScorer

PROBLEM = Problem(id="r", question="What is 3 + 4?", answer="7")
WRONG, RIGHT = "3 + 4 = 8, so \\boxed{8}.", "3 + 4 = 7, so \\boxed{7}."
CRITIQUE = "The step '3 + 4 = 8' is wrong: 3 + 4 is 7."


def tutor(call: ScriptCall) -> str:
    """Answers 8 until it has seen the critique; the critique flags an 8 and passes a 7."""
    if "List every concrete error" in call.prompt:
        return CRITIQUE if "\\boxed{8}" in call.prompt else "NO ERRORS"
    return RIGHT if CRITIQUE in call.prompt else WRONG


def roles(r) -> list[tuple[str, int]]:
    g = r.trace.graph
    return [(a["role"], a["round"]) for _, a in sorted(g.nodes(data=True), key=lambda x: x[1]["request"] if "request" in x[1] else 0) if "role" in a]


async def test_revises_on_feedback_and_stops_when_it_finds_no_error():
    b = ScriptedBackend(tutor)
    prompt = PromptConfig(system="You are careful.")
    r = await Solver(b, make_strategy("self_refine"), prompt=prompt).solve(PROBLEM)
    assert r.answer == "7" and r.correct
    assert r.metrics["rounds"] == 1 and r.metrics["no_error"] == 1
    assert [c.answer for c in r.candidates] == ["8", "7"]
    assert roles(r) == [("answer", 0), ("feedback", 1), ("answer", 1), ("feedback", 2)]
    assert r.ledger.requests == len(b.calls) == 4
    # every prompt is the run's prompt (system message and question) with the request in the user turn
    head = b.calls[0].prompt[: b.calls[0].prompt.index("Please reason step by step")]
    assert head.startswith("<|system|>You are careful.")
    assert all(c.prompt.startswith(head) for c in b.calls)
    assert WRONG in b.calls[1].prompt and CRITIQUE in b.calls[2].prompt and RIGHT in b.calls[3].prompt


async def test_stops_after_max_rounds_and_keeps_the_history():
    always = lambda c: "Step 1 is wrong." if "List every concrete error" in c.prompt else f"try {c.prompt.count('Attempt ')} \\boxed{{8}}"  # noqa: E731
    b = ScriptedBackend(always)
    r = await Solver(b, make_strategy("self_refine", max_rounds=3)).solve(PROBLEM)
    assert r.metrics["rounds"] == 3 and r.metrics["no_error"] == 0
    assert r.ledger.requests == 7  # answer + 3 x (feedback + revision); the last revision gets no feedback
    assert [c.text for c in r.candidates] == ["try 0 \\boxed{8}", "try 1 \\boxed{8}", "try 2 \\boxed{8}", "try 3 \\boxed{8}"]
    r = await Solver(ScriptedBackend(always), make_strategy("self_refine", max_rounds=3, history="last")).solve(PROBLEM)
    assert [c.text for c in r.candidates][-1] == "try 1 \\boxed{8}"


class ModelJudge(KeywordScorer):
    """A scorer with its own model, as the judge and logprob scorers have."""

    def __init__(self) -> None:
        super().__init__()
        self.backend = ScriptedBackend(tutor)


async def test_feedback_from_the_scorers_model_is_a_verifier_call():
    policy, judge = ScriptedBackend(tutor), ModelJudge()
    r = await Solver(policy, make_strategy("self_refine", feedback="scorer"), judge).solve(PROBLEM)
    assert r.answer == "7" and r.metrics["feedback_by_scorer"] == 1
    assert len(judge.backend.calls) == 2 and len(policy.calls) == 2
    sent = sum(len(c.prompt) for c in judge.backend.calls)  # the critiques' prompts, as the judge's engine got them
    assert r.ledger.requests == 2 and r.ledger.verifier_calls == 2 and r.ledger.verifier_requests == 2
    assert r.ledger.verifier_tokens == sent
    assert [a["by"] for _, a in r.trace.graph.nodes(data=True) if a.get("role") == "feedback"] == ["scorer", "scorer"]
    # the critiques count against the verifier budget
    capped = await Solver(ScriptedBackend(tutor), make_strategy("self_refine", feedback="scorer"), ModelJudge(),
                          budget=Budget(verifier_calls=1)).solve(PROBLEM)
    feedback = [a for _, a in capped.trace.graph.nodes(data=True) if a.get("role") == "feedback"]
    assert capped.ledger.verifier_calls == 1 and len(feedback) == 1 and capped.answer == "8"  # no call left to check it
    with pytest.raises(ValueError, match="feedback: scorer"):
        await Solver(policy, make_strategy("self_refine", feedback="scorer"), KeywordScorer()).solve(PROBLEM)


async def test_self_refine_on_the_engine(engine):
    s = Solver(engine, make_strategy("self_refine", max_rounds=2, max_tokens=48, feedback_tokens=32, history="last"), seed=3)
    r = await s.solve(Problem(id="add", question="What is 12 + 7?", answer="19"))
    rounds = r.metrics["rounds"]
    feedback = [a for _, a in r.trace.graph.nodes(data=True) if a.get("role") == "feedback"]
    answers = [a for _, a in r.trace.graph.nodes(data=True) if a.get("role") == "answer"]
    assert len(answers) == rounds + 1 == len(r.candidates)
    assert len(feedback) == rounds + r.metrics["no_error"] and 1 <= len(feedback) <= 2
    assert r.ledger.requests == len(answers) + len(feedback)
    assert all(a["prompt_tokens"] > 0 for a in feedback) and r.text
