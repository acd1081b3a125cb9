"""Thinking budgets on the scripted backend: budget forcing (s1), Dynasor-CoT probes, the
thinking / answer / probe split of the ledger, and bad input refused before any request."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.scripted import ASSISTANT, EOS, ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.prompt import PromptConfig
from ponder.runtime.solver import Solver
from ponder.runtime.thinking import ThinkingConfig, parts, split_tokens
from ponder.strategies.base import make_strategy

PREFILLED = PromptConfig(thinking=ThinkingConfig(prefill=True))
Q = Problem(id="q", question="What is 2+2?", answer="4")


def enc(text: str) -> list[int]:
    return [ord(c) for c in text]


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


# -- budget forcing ------------------------------------------------------------------------------
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


def endless(call):
    if "</think>" in call.generated:
        return "4} because two and two make four, as everyone knows."
    return "hmm " * 400


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


@pytest.mark.parametrize("strategy", ["best_of_n", "first_finish", "deepconf", "adaptive_consistency"])
async def test_full_solution_samplers_take_a_thinking_budget(strategy):
    config = {"best_of_n": {"n": 2}, "first_finish": {"n": 2}, "deepconf": {"n": 2, "window": 8, "max_tokens": 300},
              "adaptive_consistency": {"wave": 2, "max_n": 2}}[strategy]
    backend = ScriptedBackend(endless)
    s = make_strategy(strategy, **config, thinking_budget={"max_thinking_tokens": 20, "answer_tokens": 2})
    r = await Solver(backend, s, prompt=PREFILLED).solve(Q)
    assert r.answer == "4"
    assert all(c.prompt.endswith("hmm " * 5 + "</think>\n\nFinal Answer: \\boxed{") for c in backend.calls if "</think>" in c.prompt)
    assert r.ledger.thinking_tokens == 20 * r.ledger.requests // 2 and r.ledger.answer_tokens == 2 * r.ledger.requests // 2


# -- dynasor ------------------------------------------------------------------------------------
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


# -- the split ---------------------------------------------------------------------------------------
async def test_the_ledger_splits_thinking_and_answer_tokens():
    prefilled = await Solver(ScriptedBackend(["abc</think>xyz"]), make_strategy("best_of_n", n=2), prompt=PREFILLED).solve(Q)
    assert (prefilled.ledger.thinking_tokens, prefilled.ledger.answer_tokens) == (2 * 11, 2 * 4)  # xyz + EOS
    opened = PromptConfig(thinking=ThinkingConfig(preset="qwen3"))  # the model opens the block itself
    own = await Solver(ScriptedBackend(["ok <think>ab</think>cd"]), make_strategy("best_of_n", n=1), prompt=opened).solve(Q)
    assert (own.ledger.thinking_tokens, own.ledger.answer_tokens) == (len("<think>ab</think>"), len("ok cd") + 1)
    plain = await Solver(ScriptedBackend(["abc</think>xyz"]), make_strategy("best_of_n", n=1)).solve(Q)
    assert (plain.ledger.thinking_tokens, plain.ledger.answer_tokens) == (0, 0)  # no thinking block configured


def test_split_counts_a_token_where_its_text_begins_and_parts_drop_the_tags():
    tok = ScriptedBackend([""]).tokenizer
    config = ThinkingConfig()
    assert split_tokens(config, tok, enc("<think>"), enc("ab</think>c") + [EOS]) == (10, 2)
    assert parts(config, "ab</think>\nanswer", True) == ("ab", "answer")
    assert parts(config, "<think>\nab\n</think>answer", False) == ("ab", "answer")


def test_presets_fill_the_family_defaults_and_prefill_is_never_doubled():
    assert ThinkingConfig(preset="r1").prefill and not ThinkingConfig(preset="qwen3").prefill
    tok = ScriptedBackend([""]).tokenizer
    ids = tok.chat([{"role": "user", "content": "q"}])
    once = ThinkingConfig(prefill=True).prefilled(tok, ids)
    assert tok.decode(once).endswith(ASSISTANT + "<think>\n") and ThinkingConfig(prefill=True).prefilled(tok, once) == once


# -- bad input ----------------------------------------------------------------------------------------
def test_a_minimum_above_the_maximum_is_one_line_naming_both():
    with pytest.raises(ValueError) as e:
        make_strategy("budget_forcing", min_thinking_tokens=100, max_thinking_tokens=10)
    assert str(e.value) == "strategy budget_forcing: field 'max_thinking_tokens': min_thinking_tokens (100) is above max_thinking_tokens (10)"
    with pytest.raises(ValueError, match=r"^strategy best_of_n: field 'thinking_budget.max_thinking_tokens': min_thinking_tokens \(9\) is above max_thinking_tokens \(8\)$"):
        make_strategy("best_of_n", thinking_budget={"min_thinking_tokens": 9, "max_thinking_tokens": 8})


def test_a_delimiter_the_tokenizer_cannot_encode_is_refused_before_any_request():
    backend = ScriptedBackend(["x"])
    bad = PromptConfig(thinking=ThinkingConfig(end="</th\0ink>"))  # the tokenizer drops NUL (its EOS) on decoding
    with pytest.raises(ValueError, match=r"^thinking.end: the tokenizer cannot encode '</th\\x00ink>' exactly \(it decodes to '</think>'\)$"):
        Solver(backend, make_strategy("budget_forcing"), prompt=bad)
    assert backend.calls == []


def test_a_probe_interval_of_zero_is_one_line():
    with pytest.raises(ValueError, match=r"^strategy dynasor: field 'probe_interval': Input should be greater than or equal to 1$"):
        make_strategy("dynasor", probe_interval=0)


def test_a_runs_summary_totals_the_split_and_its_line_shows_it(tmp_path):
    from ponder.app.run.store import RunStore, summarize, thinking_split

    store = RunStore(tmp_path)
    store.create({})
    result = asyncio.run(Solver(ScriptedBackend(["abc</think>xyz"]), make_strategy("best_of_n", n=2), prompt=PREFILLED).solve(Q))
    record = store.append(Q, result)
    assert {k: record["tokens"][k] for k in ("thinking", "answer", "probe")} == {"thinking": 22, "answer": 8, "probe": 0}
    summary = summarize("r", "best_of_n", [record, {**record, "id": "old", "tokens": {"generated": 5, "prompt": 9, "cached": 0, "aborted": 0}}], 1.0)
    assert summary["tokens"]["thinking"] == 22 and summary["tokens"]["answer"] == 8  # a record from before the split adds nothing
    assert thinking_split(summary) == " (thinking 11.0, answer 4.0, probes 0.0 per problem)"
    assert thinking_split(summarize("r", "best_of_n", [record | {"tokens": {"generated": 5, "prompt": 9, "cached": 0, "aborted": 0}}], 1.0)) == ""


def test_ponder_run_refuses_a_delimiter_its_model_cannot_encode_in_one_line_before_the_engine(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    config = tmp_path / "think.yaml"
    config.write_text("name: think\nbackend: {kind: vllm, model: smollm2-135m-instruct}\n"
                      "strategy: {name: budget_forcing}\ndataset: {name: gsm8k}\n"
                      "prompt: {thinking: {end: '<|im_end|>'}}\n")  # a special token: decoding drops it
    p = subprocess.run([str(Path(sys.executable).parent / "ponder"), "run", str(config), "--limit", "1"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and not (tmp_path / "runs").exists()
    assert p.stderr.strip().splitlines() == [f"error: {config}: prompt.thinking.end: the tokenizer cannot encode '<|im_end|>' exactly (it decodes to '')"]
