"""Budget forcing (s1): an early end of thinking gets "Wait" appended, thinking that never closes is
cut at the cap and forced to answer; on the scripted backend and on the real engine."""

from __future__ import annotations

import pytest

from ponder.backends.scripted import ASSISTANT, EOS, ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.prompt import PromptConfig
from ponder.runtime.solver import Solver
from ponder.runtime.thinking import ThinkingConfig
from ponder.strategies.base import make_strategy

from ..engine_runs import Watched, counted
from ..scripts import enc, endless

PREFILLED = PromptConfig(thinking=ThinkingConfig(prefill=True))
Q = Problem(id="q", question="What is 2+2?", answer="4")


class Recorded(ScriptedBackend):
    """The scripted engine, keeping each streamed request's prompt length and usage."""

    def __init__(self, script, **kw) -> None:
        super().__init__(script, **kw)
        self.finished: list[tuple[int, object]] = []

    async def stream(self, prompt_ids, sampling):
        async for d in super().stream(prompt_ids, sampling):
            if d.usage is not None:
                self.finished.append((len(prompt_ids), d.usage))
            yield d


def early_closer(call):
    """Closes thinking after one short thought; answers once thinking is closed."""
    if "</think>" in call.generated:
        return "The answer is \\boxed{4}."
    return " short thought, two plus two is four.</think>"


async def test_an_early_end_of_thinking_gets_wait_appended_exactly_max_waits_times():
    backend = Recorded(early_closer)
    solver = Solver(backend, make_strategy("budget_forcing", min_thinking_tokens=500, max_waits=3, temperature=0), prompt=PREFILLED)
    r = await solver.solve(Q)
    thought = " short thought, two plus two is four."
    expected = enc((thought + "Wait") * 3 + thought + "</think>" + "The answer is \\boxed{4}.") + [EOS]
    node = r.trace.node(r.candidates[0].node)
    assert list(node.generated_ids) == expected  # the delimiter's tokens gone, "Wait" in their place, 3 times
    assert r.answer == "4" and r.metrics["waits"] == 3
    # each continuation sends the exact ids so far: the last prompt is the first plus everything kept
    first = backend.calls[0].prompt
    assert [c.prompt for c in backend.calls[1:4]] == [first + (thought + "Wait") * k for k in (1, 2, 3)]
    assert backend.calls[4].prompt == first + (thought + "Wait") * 3 + thought + "</think>"
    # the continuations are served from the prefix cache, beyond the original prompt
    for (length, usage), (before, _) in zip(backend.finished[1:4], backend.finished[:3]):
        assert usage.cached_tokens > before and usage.cached_tokens >= length - len("Wait") - 15
    assert r.ledger.requests == 5 == len(backend.finished)


async def test_an_eos_while_thinking_is_an_early_end_too():
    def script(call):
        if "</think>" in call.generated:
            return "\\boxed{4}"
        return " four." if call.generated.count("four") < 2 else " four.</think>"

    backend = ScriptedBackend(script)
    r = await Solver(backend, make_strategy("budget_forcing", min_thinking_tokens=100, max_waits=2, temperature=0), prompt=PREFILLED).solve(Q)
    node = r.trace.node(r.candidates[0].node)
    # the EOS that ended each early turn is gone; "Wait" took its place
    assert list(node.generated_ids) == enc(" four.Wait four.Wait four.</think>\\boxed{4}") + [EOS]
    assert r.metrics["waits"] == 2 and r.answer == "4"


async def test_thinking_that_never_closes_is_cut_at_the_cap_and_forced_to_answer():
    backend = ScriptedBackend(endless)
    strategy = make_strategy("budget_forcing", max_thinking_tokens=40, answer_tokens=12, temperature=0)
    r = await Solver(backend, strategy, prompt=PREFILLED).solve(Q)
    node = r.trace.node(r.candidates[0].node)
    forced = "</think>\n\nFinal Answer: \\boxed{"
    assert list(node.generated_ids) == enc(("hmm " * 10) + forced + "4} because t")  # 40 thinking tokens, a 12-token answer
    assert node.finish == "length" and r.answer == "4"
    assert r.metrics["thinking_cut"] == 1 and r.metrics["thinking_tokens"] == 40 + len("</think>")
    assert backend.calls[1].prompt.endswith(ASSISTANT + "<think>\n" + "hmm " * 10 + forced)
    # the ledger's split: the model's 40 thinking tokens; the answer's 12; the inserted text is no request's output
    assert (r.ledger.thinking_tokens, r.ledger.answer_tokens, r.ledger.generated_tokens) == (40, 12, 52)


async def test_parallel_samples_vote_over_the_forced_answers():
    answers = {0: "4", 1: "5", 2: "4"}

    def script(call):
        if "</think>" in call.generated:
            return answers[call.seed % 3] + "}"
        return "thinking " * 50

    r = await Solver(ScriptedBackend(script), make_strategy("budget_forcing", n=3, max_thinking_tokens=18), prompt=PREFILLED).solve(Q)
    assert sorted(c.answer for c in r.candidates) == ["4", "4", "5"] and r.answer == "4"
    assert r.ledger.requests == 6  # each sample: its thinking, then its answer


COUNT = Problem(id="count", question="Count from 1 to 60, one number per line.")
SHORT = Problem(id="short", question="What is 2 + 2?", answer="4")


@pytest.mark.engine
async def test_budget_forcing_cuts_thinking_at_the_cap_and_answers(engine):
    watched = Watched(engine)
    strategy = make_strategy("budget_forcing", n=2, max_thinking_tokens=32, answer_tokens=12, temperature=0.7)
    r = await counted(Solver(watched, strategy, prompt=PREFILLED, seed=4), COUNT)
    forced = engine.tokenizer.encode("</think>\n\nFinal Answer: \\boxed{")
    assert r.metrics["thinking_cut"] == 2 and r.ledger.thinking_tokens == 64 and 0 < r.ledger.answer_tokens <= 24
    for c in r.candidates:
        ids = r.trace.node(c.node).generated_ids
        assert list(ids[32:32 + len(forced)]) == forced  # 32 thinking tokens, then the forced end, token-exactly
        assert len(ids) - 32 - len(forced) <= 12
    # each answer request continues its sample's exact ids: served from the cache as far as they were computed
    answers = [k for k, (_, _, u) in enumerate(watched.streams) if u.generated_tokens <= 12]
    assert len(answers) == 2 and all(watched.streams[k][2].cached_tokens == watched.cacheable(k) > len(watched.streams[0][0]) // 32 * 32 for k in answers)


@pytest.mark.engine
async def test_budget_forcing_appends_wait_when_thinking_ends_early(engine):
    # a paragraph break ends this model's "thinking": it ends early, and is made to go on
    paragraphs = PromptConfig(thinking=ThinkingConfig(end="\n\n", prefill=True))
    watched = Watched(engine)
    strategy = make_strategy("budget_forcing", min_thinking_tokens=400, max_thinking_tokens=480, max_waits=2, answer_tokens=8, temperature=0)
    r = await counted(Solver(watched, strategy, prompt=paragraphs), SHORT)
    wait = engine.tokenizer.encode("Wait")
    ids = list(r.trace.node(r.candidates[0].node).generated_ids)
    assert r.metrics["waits"] == 2 and r.ledger.requests == 4  # two early ends, then the answer after the third
    starts = [i for i in range(len(ids)) if ids[i:i + len(wait)] == wait]
    assert len(starts) >= 2
    # each continuation reads the sample's ids from the cache as far as the engine computed them
    assert [u.cached_tokens for _, _, u in watched.streams[1:]] == [watched.cacheable(k) for k in (1, 2, 3)]
