"""DeepConf against the paper: warm-up of 16, the low/high presets, a window that can fill,
token confidence from the top-k alternatives only."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.strategies.deepconf import percentile

PROBLEM = Problem(id="dc", question="What is 3 + 4?", answer="7")


def test_defaults_are_the_papers_and_presets_name_eta():
    cfg = make_strategy("deepconf").config
    assert cfg.warmup == 16 and cfg.preset == "low" and cfg.keep_percent == 10 and cfg.top_k == 20
    assert cfg.window == 2048 and cfg.max_tokens >= 2 * cfg.window
    assert make_strategy("deepconf", preset="high").config.keep_percent == 90
    assert make_strategy("deepconf", eta=25).config.keep_percent == 25
    with pytest.raises(ValueError, match="set preset or eta, not both"):
        make_strategy("deepconf", preset="high", eta=25)


def test_a_window_that_cannot_fill_early_is_refused():
    with pytest.raises(ValueError, match=r"window \(2048\) must be at most half of max_tokens \(2048\)"):
        make_strategy("deepconf", window=2048, max_tokens=2048)
    make_strategy("deepconf", window=1024, max_tokens=2048)


@pytest.mark.parametrize("preset,voters", [("low", 1), ("high", 9)])
async def test_presets_keep_ten_or_ninety_percent_of_traces(preset, voters):
    b = ScriptedBackend(lambda c: f"trace {c.index} \\boxed{{7}}")
    r = await Solver(b, make_strategy("deepconf", n=10, preset=preset, window=4, max_tokens=64, top_k=3)).solve(PROBLEM)
    assert r.metrics["voters"] == voters and r.answer == "7"


def test_online_threshold_is_the_100_minus_eta_percentile():
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 90) == pytest.approx(4.6)
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


class SampledTokenAppended:
    """vLLM's top-k list with the sampled token added when it falls outside the top k: here
    every position carries one more, very unlikely, entry."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def generate(self, ids, sampling):
        out = await self.inner.generate(ids, sampling)
        return [replace(c, top_logprobs=tuple(t + (-30.0,) for t in c.top_logprobs)) for c in out]


async def test_token_confidence_uses_the_top_k_alternatives_only():
    def run(backend):
        return Solver(backend, make_strategy("deepconf", n=3, eta=100, window=4, max_tokens=64, top_k=3)).solve(PROBLEM)

    script = lambda c: f"answer {c.index}: \\boxed{{7}}"  # noqa: E731
    plain = await run(ScriptedBackend(script))
    extra = await run(SampledTokenAppended(ScriptedBackend(script)))
    conf = lambda r: sorted(a["confidence"] for _, a in r.trace.graph.nodes(data=True) if "confidence" in a)  # noqa: E731
    assert len(conf(plain)) == 3 and conf(extra) == conf(plain)
