"""PDR: the summary sees every draft, prompts follow the run's PromptConfig, and a budget
that stops the rounds early answers with the vote over the last round's drafts."""

from __future__ import annotations

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.budget import Budget
from ponder.runtime.prompt import PromptConfig
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy

PROBLEM = Problem(id="pdr", question="What is 3 + 4?", answer="7")


def summary_calls(b):
    return [c for c in b.calls if "Write a short summary" in c.prompt]


async def test_the_summary_sees_every_draft_each_cut_to_its_share():
    b = ScriptedBackend(lambda c: "Summary: they agree." if "Write a short summary" in c.prompt
                        else "long reasoning " * 60 + f"end of draft {c.index}: \\boxed{{7}}")
    r = await Solver(b, make_strategy("pdr", schedule=[4, 1], workspace_tokens=400, max_tokens=2000)).solve(PROBLEM)
    (call,) = summary_calls(b)
    assert all(f"end of draft {i}: \\boxed{{7}}" in call.prompt for i in range(4))  # each draft's end is there
    listing = call.prompt[call.prompt.index("Attempt 1:"): call.prompt.index("Here are several attempts")]
    assert len(listing) <= 400 and all(f"Attempt {i}:" in listing for i in (1, 2, 3, 4))
    shares = [len(part) for part in listing.split("Attempt ")[1:]]
    assert max(shares) - min(shares) <= 2  # equal shares (one character = one token here)
    assert r.answer == "7"


async def test_summary_and_refinement_prompts_follow_the_prompt_config():
    b = ScriptedBackend(lambda c: "Summary: fine." if "Write a short summary" in c.prompt else f"draft {c.index} \\boxed{{7}}")
    prompt = PromptConfig(system="You are terse.", chat=False)
    r = await Solver(b, make_strategy("pdr", schedule=[2, 2, 1], workspace_tokens=64, max_tokens=64), prompt=prompt).solve(PROBLEM)
    assert len(b.calls) == 2 + 1 + 2 + 1 + 1  # drafts, summary, drafts, summary, final draft
    for call in b.calls:
        assert call.prompt.startswith("You are terse.\n\nWhat is 3 + 4?") and "<|user|>" not in call.prompt
    (first, _) = summary_calls(b)
    assert "Please reason step by step" not in first.prompt  # the summary is not asked to solve the problem
    assert r.answer == "7"


async def test_a_budget_that_stops_a_middle_round_answers_with_that_rounds_vote():
    b = ScriptedBackend(lambda c: "\\boxed{8}" if c.index == 0 else "\\boxed{7}")  # 10 tokens with EOS
    r = await Solver(b, make_strategy("pdr", schedule=[3, 2, 1]), budget=Budget(generated_tokens=30)).solve(PROBLEM)
    assert r.ledger.generated_tokens == 30 and r.metrics["rounds"] == 1  # round 1 spent the budget
    assert [c.answer for c in r.candidates] == ["8", "7", "7"]
    assert r.answer == "7"  # the vote, not the first draft
