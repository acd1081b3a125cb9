"""PDR and SR: the summary sees every draft, prompts follow the run's PromptConfig, the workspace
is bounded, drafts may come from a sub-strategy, and a budget that stops the rounds early
answers with the vote over the last round's drafts."""

from __future__ import annotations

import networkx as nx
import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.budget import Budget
from ponder.runtime.prompt import PromptConfig
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy

from ..scripts import KeywordScorer, backend
from ..traces import attrs, nodes

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


async def test_pdr_workspace_is_bounded_and_last_round_has_one_draft():
    b = ScriptedBackend(lambda c: ("Summary: " + "notes " * 400) if "summary" in c.prompt else "draft " * 60 + "\\boxed{7}")
    r = await Solver(b, make_strategy("pdr", schedule=[3, 2, 1], workspace_tokens=50, max_tokens=500)).solve(PROBLEM)
    g = r.trace.graph
    rounds = {a.get("round") for _, a in g.nodes(data=True)} - {None}
    assert rounds == {1, 2, 3}
    assert len(nodes(r, round=3)) == 1 and len(nodes(r, round=2)) == 2 and len(nodes(r, round=1)) == 3
    assert all(a["workspace_tokens"] <= 50 for _, a in g.nodes(data=True) if "workspace_tokens" in a)
    assert r.metrics["B_tot"] > r.metrics["B_seq"] > 0 and r.answer == "7"


async def test_pdr_top_k_and_random_k_and_sr():
    b = ScriptedBackend(lambda c: f"attempt {c.index} \\boxed{{{7 if c.index % 2 == 0 else 8}}}")
    for distill in ("top_k", "random_k"):
        r = await Solver(b, make_strategy("pdr", schedule=[4, 3, 1], distill=distill, k=2, workspace_tokens=200)).solve(PROBLEM)
        assert len(nodes(r, round=3)) == 1 and len(nodes(r, round=2)) == 3
        requests = {a["request"] for _, a in nodes(r, round=2)}
        assert len(requests) == (3 if distill == "random_k" else 1)  # random_k: a workspace per generator
    r = await Solver(b, make_strategy("sr")).solve(PROBLEM)
    assert [len(nodes(r, round=i)) for i in (1, 2, 3)] == [1, 1, 1]


async def test_pdr_drafts_with_a_sub_strategy():
    pdr = make_strategy("pdr", schedule=[2, 1], workspace_tokens=64, max_tokens=200, drafter={"name": "beam_search", "config": {"n": 4, "width": 2}})
    assert pdr.needs_scorer
    b = backend()
    r = await Solver(b, pdr, KeywordScorer()).solve(PROBLEM)
    g = r.trace.graph
    markers = [n for n, a in g.nodes(data=True) if a.get("subrun") == "beam_search"]
    assert len(markers) == 2
    drafts = [n for n, a in g.nodes(data=True) if a.get("round") == 1]
    assert len(drafts) == 2 and all(any(m in nx.ancestors(g, d) for m in markers) for d in drafts)
    searched = {r.trace.graph.nodes[d]["step"] for d in drafts}
    assert r.metrics["rounds"] == 2 and all("boxed{7}" in t for t in searched)


ENGINE_PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")


@pytest.mark.engine
async def test_pdr_and_sr_answer_with_a_bounded_workspace(engine):
    r = await Solver(engine, make_strategy("pdr", schedule=[2, 2, 1], max_tokens=64, workspace_tokens=64), seed=4).solve(ENGINE_PROBLEM)
    rounds = [a.get("round") for _, a in r.trace.graph.nodes(data=True)]
    assert rounds.count(3) == 1 and rounds.count(2) == 2 and rounds.count(1) == 2
    assert all(a["workspace_tokens"] <= 64 for _, a in attrs(r, "workspace_tokens"))
    assert 0 < r.metrics["B_seq"] < r.metrics["B_tot"] == r.ledger.generated_tokens
    r = await Solver(engine, make_strategy("sr", schedule=[1, 1], max_tokens=64, workspace_tokens=64), seed=4).solve(ENGINE_PROBLEM)
    assert r.text and r.metrics["rounds"] == 2
