"""The CLI, run as a user runs it: a subprocess of the installed `ponder` script."""

from __future__ import annotations

import re

from .commands import ponder


def test_solve_end_to_end_with_majority_vote(vllm_server):
    # on the session's vLLM server, so the test starts no engine of its own
    p = ponder("solve", "What is 12 + 7?", "--n", "4", "--answer", "19", "--max-tokens", "96", "--endpoint", vllm_server[0])
    assert p.returncode == 0, p.stderr[-2000:]
    answer = re.search(r"^answer: (.*?)  correct: (True|False)$", p.stdout, re.M)
    tokens = re.search(r"^tokens: generated (\d+), prompt (\d+) \(cached (\d+)\)", p.stdout, re.M)
    assert answer and tokens, p.stdout
    assert 0 < int(tokens.group(1)) <= 4 * 96
    assert len(re.search(r"^candidates: (.*)$", p.stdout, re.M).group(1).split(", ")) == 4


def test_unknown_strategy_is_one_clear_line():
    p = ponder("solve", "2+2?", "--strategy", "nope")
    assert p.returncode == 2
    (line,) = p.stderr.strip().splitlines()
    assert line.startswith("error: unknown strategy 'nope': expected one of a_star, ")
    assert ", beam_search, best_of_n, " in line


def test_missing_model_is_one_clear_line():
    p = ponder("solve", "2+2?", "--model", "no-such-model")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert "model 'no-such-model' not found" in p.stderr


def test_strategies_lists_fields_and_defaults():
    p = ponder("strategies")
    assert p.returncode == 0 and "beam_search  (needs a scorer)" in p.stdout and "    width = 4" in p.stdout


def test_models_list_shows_the_embedded_model():
    p = ponder("models", "list")
    assert p.returncode == 0 and p.stdout.startswith("smollm2-135m-instruct")
