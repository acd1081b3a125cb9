"""DeepConf against the paper: warm-up of 16, the low/high presets, a window that can fill,
token confidence from the top-k alternatives only; offline votes among confident traces and
online aborts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.strategies.deepconf import percentile

from ..traces import attrs, nodes

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


def confidence_backend(texts):
    # logprobs depend on the last character: after 'u' (unsure) every option is likely (-1.0), otherwise
    # the distribution is peaked (-8.0 for the top-k alternatives): low vs high token confidence
    return ScriptedBackend(lambda c: texts[(c.seed or 0) % len(texts)], logprob=lambda prefix, t: -1.0 if prefix and prefix[-1] == ord("u") else -8.0)


async def test_deepconf_offline_votes_among_confident_traces():
    texts = ["sure sure \\boxed{7}", "uuuuuuuuuuuuuuu \\boxed{9}", "uuuuuuuuuuuuu \\boxed{9}", "uuuuuuuuuuuuuuuu \\boxed{9}"]
    r = await Solver(confidence_backend(texts), make_strategy("deepconf", n=4, eta=25, window=4, top_k=3)).solve(PROBLEM)
    assert r.answer == "7"  # the majority (9) came from unconfident traces and was filtered out
    assert r.metrics["voters"] == 1


async def test_deepconf_online_aborts_low_confidence_traces():
    texts = ["sure " * 10 + "\\boxed{7}"] * 4 + ["u" * 60 + " \\boxed{9}"] * 4
    b = confidence_backend(texts)
    r = await Solver(b, make_strategy("deepconf", mode="online", n=8, warmup=4, eta=50, window=4, top_k=3)).solve(PROBLEM)
    # seeds of the warm-up traces pick the confident texts; half of the online ones are unsure
    assert r.metrics["aborted"] >= 1 and r.ledger.aborted_requests == r.metrics["aborted"]
    aborted = nodes(r, finish="abort")
    assert all(a["tokens"] < 60 for _, a in aborted)  # stopped early
    assert r.answer == "7"


ENGINE_PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")


@pytest.mark.engine
async def test_deepconf_offline_and_online(engine):
    r = await Solver(engine, make_strategy("deepconf", n=4, eta=50, window=16, top_k=5, max_tokens=48), seed=6).solve(ENGINE_PROBLEM)
    confs = [a["confidence"] for _, a in attrs(r, "confidence")]
    assert len(confs) == 4 and all(c > 0 for c in confs) and r.metrics["voters"] == 2
    # DeepConf-low: the threshold is the 90th percentile of the warm-up, so most online traces fall below it
    r = await Solver(engine, make_strategy("deepconf", mode="online", n=6, warmup=3, preset="low", window=8, top_k=5, max_tokens=48), seed=6).solve(ENGINE_PROBLEM)
    online = [a for _, a in r.trace.graph.nodes(data=True) if a.get("warmup") is False]
    assert len(online) == 3 and r.metrics["aborted"] >= 1
    assert r.ledger.aborted_requests == r.metrics["aborted"] == sum(a["finish"] == "abort" for a in online)
    for a in online:
        if a["finish"] == "abort":
            assert a["confidence"] < r.metrics["threshold"] and a["tokens"] < 48
