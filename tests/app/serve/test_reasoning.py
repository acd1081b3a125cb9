"""Thinking budgets over the OpenAI API, unit by unit: the request fields, their mapping onto
the served strategy, and the live reasoning stream (scripted engine). The official client
against a real `ponder serve` is in test_server.py."""

from __future__ import annotations

import pytest

from ponder.app.serve.api_job import ApiJob
from ponder.app.serve.openai_api import ApiError, Choice, parse_request
from ponder.app.serve.reasoning import ReasoningDelta, ReasoningFollower, budget_of, split_choice, with_budget
from ponder.backends.base import Delta
from ponder.backends.scripted import ScriptedBackend
from ponder.runtime.thinking import ThinkingConfig

ASK = [{"role": "user", "content": "What is 2+2?"}]


def request(**fields):
    return parse_request({"model": "budget_forcing", "messages": ASK, **fields}, True, "ponder")


def test_thinking_fields_are_checked_field_by_field():
    r = request(max_thinking_tokens=64, min_thinking_tokens=8, reasoning_effort="high")
    assert (r.min_thinking_tokens, r.max_thinking_tokens, r.reasoning_effort) == (8, 64, "high")
    for body, param, message in [
        ({"min_thinking_tokens": 65, "max_thinking_tokens": 64}, "min_thinking_tokens", "min_thinking_tokens: 65 is above max_thinking_tokens (64)"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort", "reasoning_effort: expected one of low, medium, high, got 'extreme'"),
        ({"max_thinking_tokens": 0}, "max_thinking_tokens", "max_thinking_tokens: 0 is outside [1, inf]"),
    ]:
        with pytest.raises(ApiError) as e:
            request(**body)
        assert (e.value.param, e.value.message) == (param, message)


def test_reasoning_effort_maps_to_the_configured_cap_and_an_explicit_cap_wins():
    efforts = {"low": 100, "medium": 400, "high": 1600}
    assert budget_of(request(reasoning_effort="low"), efforts) == {"max_thinking_tokens": 100}
    assert budget_of(request(reasoning_effort="low", max_thinking_tokens=50), efforts) == {"max_thinking_tokens": 50}
    assert budget_of(request(), efforts) is None
    with pytest.raises(ApiError, match=r"min_thinking_tokens: 200 is above the thinking cap of 100 \(reasoning_effort\)"):
        budget_of(request(reasoning_effort="low", min_thinking_tokens=200), efforts)


def test_the_budget_goes_where_each_strategy_takes_it():
    budget = {"max_thinking_tokens": 64}
    assert with_budget("budget_forcing", {"n": 4}, budget) == {"n": 4, "max_thinking_tokens": 64}
    assert with_budget("best_of_n", {"thinking_budget": {"max_waits": 1}}, budget) == {"thinking_budget": {"max_waits": 1, "max_thinking_tokens": 64}}
    assert with_budget("dynasor", {}, budget) == {"thinking_budget": budget}
    with pytest.raises(ApiError, match="^max_thinking_tokens: strategy beam_search does not sample whole solutions"):
        with_budget("beam_search", {}, budget)


def test_a_bad_budget_is_refused_before_any_engine_call():
    backend = ScriptedBackend(["x"])
    with pytest.raises(ApiError, match="beam_search does not sample whole solutions"):
        ApiJob(backend, request(max_thinking_tokens=8, model="beam_search"), "beam_search", object(), None)
    assert backend.calls == []


def test_a_choice_splits_into_reasoning_and_answer():
    choice = split_choice(Choice("two and two</think>\n\nThe answer is 4.", "stop", "4", 9), ThinkingConfig(), True)
    assert (choice.reasoning, choice.text) == ("two and two", "The answer is 4.")


def test_the_follower_sends_only_text_that_stays_thinking():
    tok = ScriptedBackend([""]).tokenizer
    base = tok.encode("<|user|>q\n<|assistant|><think>\n")
    sent: list[str] = []
    follow = ReasoningFollower(ThinkingConfig(), tok, base, lambda d: sent.append(d.text))
    for piece in ["ab", "c<", "/thi"]:  # the tail may begin a delimiter: held back
        follow(1, base, Delta(tuple(tok.encode(piece)), piece))
    assert "".join(sent) == "abc"
    follow(1, base, Delta(tuple(tok.encode("nk>")), "nk>"))
    # budget forcing dropped the delimiter and appended "Wait": the next request continues from there
    again = base + tok.encode("abcWait")
    follow(2, again, Delta(tuple(tok.encode(" more")), " more"))
    follow(3, tok.encode("unrelated probe prompt"), Delta(tuple(tok.encode("zzz")), "zzz"))
    assert "".join(sent) == "abcWait more" and all(isinstance(s, str) for s in sent)
    assert ReasoningDelta("x").text == "x"
