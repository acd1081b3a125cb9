"""Dynasor-CoT: probes during thinking, stopping at the first window of agreeing answers; on the real
engine the probes are served from the prefix cache."""

from __future__ import annotations

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.prompt import PromptConfig
from ponder.runtime.solver import Solver
from ponder.runtime.thinking import ThinkingConfig
from ponder.strategies.base import make_strategy

from ..engine_runs import counted

PREFILLED = PromptConfig(thinking=ThinkingConfig(prefill=True))
Q = Problem(id="q", question="What is 2+2?", answer="4")


def probed(answers: dict[str, list[str]]):
    """Streams think in 'a' or 'b' (by seed); the k-th probe of a stream answers answers[letter][k-1]."""

    def script(call):
        if "Final Answer**" in call.prompt:
            thought = call.prompt.split("<think>\n")[1].split("...")[0]
            return answers[thought[0]][len(thought) // 20 - 1]
        return ("a" if call.seed % 2 == 0 else "b") * 300
    return script


async def test_dynasor_stops_at_the_first_window_of_agreeing_probes_and_not_before():
    backend = ScriptedBackend(probed({"a": ["3}", "4}", "4} wait", "4}", "4}", "4}", "4}"]}))
    r = await Solver(backend, make_strategy("dynasor", probe_interval=20, certainty_window=2), prompt=PREFILLED).solve(Q)
    # probes 2-3 agree but 3 hedges; 4-5 are the first clean window
    assert r.answer == "4" and r.metrics == {"probes": 5, "early_exits": 1, "probe_tokens": 20}
    main = next(r.trace.node(i) for i in r.trace.graph.nodes if r.trace.graph.nodes[i].get("stream") == 0)
    assert main.finish == "abort" and len(main.generated_ids) == 100  # aborted at the fifth probe
    probes = [c for c in backend.calls if "Final Answer**" in c.prompt]
    assert [len(c.prompt.split("<think>\n")[1].split("...")[0]) for c in probes] == [20, 40, 60, 80, 100]
    assert backend.stats().aborted_requests == 1
    led = r.ledger
    assert (led.probe_requests, led.probe_tokens) == (5, 3 + 3 + 8 + 3 + 3)
    assert led.thinking_tokens == 100 and led.thinking_tokens + led.answer_tokens + led.probe_tokens == led.generated_tokens
    assert led.requests == 6


async def test_dynasor_streams_stop_on_their_own_and_are_voted():
    backend = ScriptedBackend(probed({"a": ["4}"] * 20, "b": ["1}", "2}", "3}", "7}", "7}"] + ["7}"] * 10}))
    r = await Solver(backend, make_strategy("dynasor", n=2, probe_interval=20, certainty_window=2), prompt=PREFILLED).solve(Q)
    per_stream = {a["stream"]: a["probes"] for _, a in r.trace.graph.nodes(data=True) if "stream" in a}
    assert per_stream == {0: 2, 1: 5}
    assert sorted(c.answer for c in r.candidates) == ["4", "7"] and r.metrics["early_exits"] == 2


async def test_a_stream_that_finishes_thinking_before_certainty_answers_as_it_wrote():
    def script(call):
        if "Final Answer**" in call.prompt:
            return "hmm}"
        return "x" * 50 + "</think>The answer is \\boxed{9}."

    r = await Solver(ScriptedBackend(script), make_strategy("dynasor", probe_interval=20), prompt=PREFILLED).solve(Q)
    assert r.answer == "9" and r.metrics["early_exits"] == 0 and r.metrics["probes"] == 2  # none once thinking closed


def test_a_probe_interval_of_zero_is_one_line():
    with pytest.raises(ValueError, match=r"^strategy dynasor: field 'probe_interval': Input should be greater than or equal to 1$"):
        make_strategy("dynasor", probe_interval=0)


SHORT = Problem(id="short", question="What is 2 + 2?", answer="4")


@pytest.mark.engine
async def test_dynasor_stops_streams_on_agreeing_probes_served_from_the_prefix_cache(engine):
    strategy = make_strategy("dynasor", n=2, probe_interval=16, probe_tokens=8, max_tokens=160, temperature=0.7)
    r = await counted(Solver(engine, strategy, prompt=PREFILLED, seed=1), SHORT)
    g = r.trace.graph
    probes = [a for _, a in g.nodes(data=True) if a.get("probe")]
    streams = [a for _, a in g.nodes(data=True) if "stream" in a]
    assert len(probes) == r.metrics["probes"] == r.ledger.probe_requests > 0
    assert r.ledger.probe_tokens == sum(a["tokens"] for a in probes)
    # a probe continues its stream's exact ids: the stream's full blocks come from the cache
    assert all(a["cached_tokens"] >= 64 for a in probes)
    assert r.metrics["early_exits"] == sum(a["early_exit"] for a in streams) >= 1
    assert all(a["finish"] == "abort" and a["probes"] >= 2 for a in streams if a["early_exit"])
    assert r.ledger.aborted_requests == r.metrics["early_exits"]
    # every generated token is a thinking, answer or probe token, those of aborted streams included
    assert r.ledger.thinking_tokens + r.ledger.answer_tokens + r.ledger.probe_tokens == r.ledger.generated_tokens
