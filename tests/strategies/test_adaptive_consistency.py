"""Adaptive-Consistency: stops when the vote is decided, aborts what is no longer needed."""

from __future__ import annotations

import itertools
import time

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.adaptive_consistency import leader_probability
from ponder.strategies.base import make_strategy
from ponder.verifiers.voting import clusters

from ..scripts import LoopLag

PROBLEM = Problem(id="a", question="What is 3 + 4?", answer="7")


def in_order(answer):
    """A script answering by the call's position: `answer(i)` for the i-th sample asked for."""
    calls = itertools.count()
    return lambda c: answer(next(calls))


def solve(config: dict, script, delay: float = 0.0):
    return Solver(ScriptedBackend(script, token_delay_s=delay), make_strategy("adaptive_consistency", **config), seed=1).solve(PROBLEM)


def test_beta_rule_matches_the_posterior():
    # Beta(5, 1): P(p > 1/2) = 1 - 0.5**5; Beta(3, 3) is symmetric
    assert leader_probability(4, 0) == pytest.approx(1 - 0.5**5)
    assert leader_probability(2, 2) == pytest.approx(0.5)
    assert leader_probability(3, 0) < 0.95 < leader_probability(4, 0)  # four unanimous votes decide at 0.95
    assert leader_probability(6, 1) > 0.95 > leader_probability(5, 1)


async def test_stops_after_one_wave_when_unanimous():
    r = await solve(dict(wave=4, max_n=32), lambda c: "3 + 4 = 7 \\boxed{7}")
    assert r.metrics["samples"] == 4 and r.metrics["waves"] == 1 and r.metrics["decided"] == 1
    assert r.ledger.requests == 4 and r.answer == "7"


async def test_continues_to_max_n_on_a_split_vote():
    r = await solve(dict(wave=4, max_n=16), in_order(lambda i: f"\\boxed{{{7 if i % 2 else 8}}}"))
    assert r.metrics["samples"] == 16 and r.metrics["waves"] == 4 and r.metrics["decided"] == 0
    assert r.ledger.requests == 16 and r.answer in ("7", "8")


async def test_decides_mid_vote_with_a_dissenter():
    # the first sample says 9, the rest 7, each later one a little longer (they finish in order):
    # the leader needs six votes against one (P > 0.95), so the second wave's last sample is aborted
    r = await solve(dict(wave=4, max_n=32), in_order(lambda i: "so " * i + ("\\boxed{9}" if i == 0 else "\\boxed{7}")), delay=0.001)
    assert r.answer == "7" and r.metrics["decided"] == 1
    assert r.metrics["samples"] == 7 and r.metrics["launched"] == 8 and r.metrics["aborted"] == 1


async def test_samples_no_longer_needed_are_aborted_and_counted():
    # four quick agreeing samples and four slow ones in the same wave: the quick ones decide
    slow = "let me think " * 40 + "\\boxed{7}"
    r = await solve(dict(wave=8, max_n=8), in_order(lambda i: "\\boxed{7}" if i % 2 else slow), delay=0.002)
    assert r.metrics["samples"] == 4 and r.metrics["aborted"] == 4
    assert r.ledger.aborted_requests == 4 and r.ledger.requests == 8
    cut = [a for _, a in r.trace.graph.nodes(data=True) if a["finish"] == "abort"]
    assert len(cut) == 4 and all(0 < a["tokens"] < len(slow) for a in cut)
    assert r.ledger.aborted_tokens == sum(a["tokens"] for a in cut)
    assert r.answer == "7"


async def test_esc_window_rule():
    r = await solve(dict(rule="esc", window=6, wave=2, max_n=20), in_order(lambda i: "\\boxed{7}" if i > 3 else f"\\boxed{{{i}}}"))
    # samples 0..3 disagree; samples 4..9 are the first window of six that agree
    assert r.metrics["samples"] == 10 and r.metrics["decided"] == 1 and r.answer == "7"


async def test_adaptive_consistency_on_the_engine(engine):
    s = Solver(engine, make_strategy("adaptive_consistency", wave=4, max_n=12, max_tokens=48, temperature=0.8), seed=7)
    r = await s.solve(Problem(id="add", question="What is 12 + 7?", answer="19"))
    m = r.metrics
    assert 1 <= m["waves"] <= 3 and m["launched"] == min(12, 4 * m["waves"])
    assert m["samples"] + m["aborted"] == m["launched"] == r.ledger.requests
    assert r.ledger.aborted_requests == m["aborted"]
    # the statistic is the beta rule's over the finished samples' answers, and it decided the stop
    counts = sorted((len(g) for g in clusters(r.candidates)), reverse=True) + [0, 0]
    assert m["statistic"] == round(leader_probability(counts[0], counts[1]), 4)
    assert m["decided"] == int(m["statistic"] >= 0.95)
    assert len(r.candidates) == m["samples"] and r.text


async def test_clustering_never_blocks_the_event_loop(monkeypatch):
    # answers only math-verify can compare; make each comparison take 0.3 s of its caller's thread
    from ponder.verifiers import answer

    class SlowPool:
        def equivalent(self, a, r, timeout_s):
            time.sleep(0.3)
            return a == r

    monkeypatch.setattr(answer, "shared_pool", lambda: SlowPool())
    async with LoopLag() as lag:
        r = await solve(dict(wave=2, max_n=4), in_order(lambda i: f"\\boxed{{x^{i % 2 + 2} + y}}"))
    assert r.metrics["samples"] == 4 and lag.ticks > 10
    assert lag.worst < 0.2
