"""compute_optimal: dispatches each problem by its first wave's agreement to the cell a fitted
policy chose for its budget, and charges that wave to the problem's budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _policy(tmp: Path) -> Path:
    wave = {"name": "best_of_n", "config": {"n": 4, "temperature": 0.8, "max_tokens": 64}}
    wide = {"name": "best_of_n", "config": {"n": 8, "temperature": 0.8, "max_tokens": 64}}  # the wave's setting: adds 4
    fresh = {"name": "best_of_n", "config": {"n": 8, "temperature": 0.6, "max_tokens": 64}}  # another setting: 8 of its own
    path = tmp / "policy.json"
    path.write_text(json.dumps({"wave": wave, "cells": {"wide": wide, "fresh": fresh}, "budgets": [
        {"tokens": 50, "choice": {"4": "wave"}, "default": "wave"},
        {"tokens": 500, "choice": {"4": "wave", "1": "wide"}, "default": "wide"},
        {"tokens": 900, "choice": {"4": "wave", "1": "fresh"}, "default": "fresh"}]}))
    return path


def _by_difficulty(call) -> str:
    """'easy': every sample agrees; 'hard': four samples, four answers (seed mod 4)."""
    answer = 7 if "easy" in call.prompt else (7, 5, 6, 8)[(call.seed or 0) % 4]
    return f"The answer is \\boxed{{{answer}}}."


SAMPLE = len("The answer is \\boxed{7}.") + 1  # tokens of one sample: characters and EOS


@pytest.mark.parametrize("question,budget,level,requests,candidates", [
    ("easy: 3 + 4?", 500, 4, 4, 4),  # all four agree: the wave's answer, nothing more
    ("hard: 3 + 4?", 500, 1, 8, 8),  # `wide`: four more samples, the vote over all eight
    ("hard: 3 + 4?", 900, 1, 12, 8),  # `fresh`: eight samples of its own after the wave
    ("hard: 3 + 4?", 120, 1, 4, 4),  # below 500 the budget-50 table applies: the wave alone
])
async def test_compute_optimal_dispatches_by_the_waves_agreement(tmp_path, question, budget, level, requests, candidates):
    from ponder.backends.scripted import ScriptedBackend
    from ponder.records.problem import Problem
    from ponder.runtime.solver import Solver
    from ponder.strategies.base import make_strategy

    strategy = make_strategy("compute_optimal", policy=str(_policy(tmp_path)), budget=budget)
    r = await Solver(ScriptedBackend(_by_difficulty), strategy).solve(Problem(id="p", question=question, answer="7"))
    assert r.metrics["level"] == level and r.metrics["cell"] == (0 if requests == 4 else 1)
    assert r.ledger.requests == requests and len(r.candidates) == candidates
    assert r.metrics["wave_tokens"] == 4 * SAMPLE and r.ledger.generated_tokens == requests * SAMPLE


async def test_compute_optimal_charges_its_first_wave_to_the_problems_budget(tmp_path):
    from ponder.backends.scripted import ScriptedBackend
    from ponder.records.problem import Problem
    from ponder.runtime.budget import Budget
    from ponder.runtime.solver import Solver
    from ponder.strategies.base import make_strategy

    strategy = make_strategy("compute_optimal", policy=str(_policy(tmp_path)), budget=900)
    cap = 4 * SAMPLE + 3 * SAMPLE  # the wave and three of the fresh cell's eight samples
    r = await Solver(ScriptedBackend(_by_difficulty), strategy, budget=Budget(generated_tokens=cap)).solve(
        Problem(id="p", question="hard: 3 + 4?", answer="7"))
    assert r.metrics["wave_tokens"] == 4 * SAMPLE and r.metrics["cell"] == 1
    # the wave's tokens and the cell's, within one budget: the cell got what the wave left
    cell_tokens = sum(c.tokens for c in r.candidates)
    assert len(r.candidates) == 8 and 0 < cell_tokens <= cap - 4 * SAMPLE
    assert r.ledger.generated_tokens == 4 * SAMPLE + cell_tokens <= cap
    with pytest.raises(ValueError, match="below every fitted budget"):
        make_strategy("compute_optimal", policy=str(_policy(tmp_path)), budget=10)
