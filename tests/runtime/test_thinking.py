"""Thinking budgets (runtime/thinking.py): every full-solution sampler takes one, the ledger splits
thinking, answer and probe tokens, presets, and bad input refused before any request."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.scripted import ASSISTANT, EOS, ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.prompt import PromptConfig
from ponder.runtime.solver import Solver
from ponder.runtime.thinking import ThinkingConfig, parts, split_tokens
from ponder.strategies.base import make_strategy

from ..scripts import enc, endless

PREFILLED = PromptConfig(thinking=ThinkingConfig(prefill=True))
Q = Problem(id="q", question="What is 2+2?", answer="4")


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


def test_ponder_run_refuses_a_delimiter_its_model_cannot_encode_in_one_line_before_the_engine(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ponder.cli import app

    config = tmp_path / "think.yaml"
    config.write_text("name: think\nbackend: {kind: vllm, model: smollm2-135m-instruct}\n"
                      "strategy: {name: budget_forcing}\ndataset: {name: gsm8k}\n"
                      "prompt: {thinking: {end: '<|im_end|>'}}\n")  # a special token: decoding drops it
    monkeypatch.chdir(tmp_path)
    # in this process, where loading the tokenizer costs a fraction of a fresh interpreter's
    # imports; -v keeps the engine's output on this terminal, so nothing rewires this process's
    # stdout and stderr (bad input through the quiet terminal, in a process of its own:
    # tests/app/run/test_run.py)
    p = CliRunner().invoke(app, ["run", str(config), "--limit", "1", "-v"])
    assert p.exit_code == 2 and not (tmp_path / "runs").exists()
    assert p.stderr.strip().splitlines() == [f"error: {config}: prompt.thinking.end: the tokenizer cannot encode '<|im_end|>' exactly (it decodes to '')"]
