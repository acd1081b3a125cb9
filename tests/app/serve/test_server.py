"""`ponder serve` as an OpenAI-compatible server: the official `openai` client against one real
`ponder serve` (embedded model, in-process engine) for the whole module.

The server runs with an API key, a 512-token cap per request and room for two requests at
once, so the limits are tested on the same process that answers the ordinary requests.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import openai
import pytest

from ponder.app.serve.request_limits import LimitedBackend, RequestLimits
from ponder.backends.base import Sampling
from ponder.backends.scripted import ScriptedBackend

from ...servers import served

PONDER = str(Path(sys.executable).parent / "ponder")
KEY = "test-key"
CAP = 512  # --max-tokens-per-request
COUNT = [{"role": "user", "content": "Count from 1 to 30, one number per line."}]


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    """(base url ending in /v1, the process) of one `ponder serve` for the module."""
    command = lambda port: [PONDER, "serve", "--port", str(port), "--api-key", KEY, "--max-tokens-per-request", str(CAP),  # noqa: E731
                            "--max-concurrent", "2", "--max-model-len", "2048", "-v"]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2", "HF_HUB_OFFLINE": "1"}
    with served(command, tmp_path_factory.mktemp("serve") / "serve.log", env) as server:
        yield server


@pytest.fixture(scope="module")
def client(serve):
    return openai.OpenAI(base_url=serve[0], api_key=KEY, max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def tokenizer():
    from ponder.backends.models import pull
    from ponder.backends.tokenizer import HFTokenizer

    return HFTokenizer.load(pull("smollm2-135m-instruct"))


def health(url: str) -> dict:
    with urllib.request.urlopen(url.replace("/v1", "/health"), timeout=5) as r:
        return json.loads(r.read())


def wait_for(url: str, check, timeout: float) -> dict:
    """The first /health reply that passes `check` within `timeout` seconds, else the last one."""
    end, h = time.monotonic() + timeout, health(url)
    while not check(h) and time.monotonic() < end:
        time.sleep(0.05)
        h = health(url)
    return h


def ponder_field(obj) -> dict:
    return obj.model_extra["ponder"]


# -- 1. sampling fields --------------------------------------------------------------------------
def test_max_tokens_caps_every_sample(client):
    r = client.chat.completions.create(model="best_of_n", messages=COUNT, max_tokens=64, temperature=0, extra_body={"ponder": {"n": 2}})
    # both greedy samples run into the cap: exactly 2 x 64 generated tokens, not 1024 each
    assert r.usage.completion_tokens == 128
    assert r.choices[0].finish_reason == "length"
    assert ponder_field(r)["tokens"] == [64]


def test_max_completion_tokens_caps_each_trajectory_of_a_step_search(client):
    r = client.chat.completions.create(
        model="beam_search", messages=COUNT, max_completion_tokens=24, n=2, seed=3,
        extra_body={"ponder": {"n": 4, "width": 2, "step_tokens": 16}, "scorer": "arithmetic"},
    )
    tokens = ponder_field(r)["tokens"]
    assert len(r.choices) == 2 and len(tokens) == 2
    assert max(tokens) <= 24  # over several steps, each trajectory stops at the client's cap
    assert r.usage.completion_tokens <= CAP


def test_temperature_zero_ignores_the_seed_and_a_seed_repeats(client):
    ask = dict(model="best_of_n", messages=COUNT, max_tokens=24, extra_body={"ponder": {"n": 1}})
    greedy = {client.chat.completions.create(temperature=0, seed=s, **ask).choices[0].message.content for s in (1, 2)}
    assert len(greedy) == 1
    hot = [client.chat.completions.create(temperature=1.5, top_p=1.0, seed=s, **ask).choices[0].message.content for s in (7, 7, 8)]
    assert hot[0] == hot[1] != hot[2]


def test_stop_ends_generation_at_the_stop_string(client):
    r = client.chat.completions.create(model="best_of_n", messages=COUNT, max_tokens=200, temperature=0, stop=["5"], extra_body={"ponder": {"n": 1}})
    text = r.choices[0].message.content
    assert "4" in text and "5" not in text
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens < 40  # the engine stopped there; the text was not cut afterwards


def test_n_returns_the_top_candidates_or_independent_solves(client):
    top = client.chat.completions.create(model="best_of_n", messages=COUNT, max_tokens=16, n=3, seed=11, extra_body={"ponder": {"n": 4}})
    assert [c.index for c in top.choices] == [0, 1, 2]
    assert ponder_field(top)["ledger"]["requests"] == 4  # three of the strategy's four samples (one engine request each)
    one = client.chat.completions.create(model="best_of_n", messages=COUNT, max_tokens=16, n=3, seed=11, temperature=1.5,
                                         extra_body={"ponder": {"n": 1}})
    assert len(one.choices) == 3
    assert ponder_field(one)["ledger"]["requests"] == 3  # one answer per solve: three solves
    assert len({c.message.content for c in one.choices}) == 3  # consecutive seeds, different samples


def test_unknown_and_unsupported_fields_are_rejected_as_openai_does(client):
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied: foo"):
        client.chat.completions.create(model="ponder", messages=COUNT, max_tokens=4, extra_body={"foo": 1})
    with pytest.raises(openai.BadRequestError, match="tools: not supported"):
        client.chat.completions.create(model="ponder", messages=COUNT, max_tokens=4,
                                       tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
    # bookkeeping fields are accepted
    r = client.chat.completions.create(model="ponder", messages=COUNT, max_tokens=4, user="u1", metadata={"a": "b"}, store=False)
    assert r.choices[0].message.content


# -- 2. streaming --------------------------------------------------------------------------------
def test_stream_assembles_the_same_text_as_a_plain_request(client):
    ask = dict(model="best_of_n", messages=COUNT, max_tokens=32, seed=5, n=2, extra_body={"ponder": {"n": 3}})
    plain = client.chat.completions.create(**ask)
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    usage = None
    for c in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **ask):
        assert c.object == "chat.completion.chunk"
        for ch in c.choices:
            texts[ch.index] = texts.get(ch.index, "") + (ch.delta.content or "")
            if ch.finish_reason:
                finishes[ch.index] = ch.finish_reason
        usage = c.usage or usage
    assert texts == {i: ch.message.content for i, ch in enumerate(plain.choices)}
    assert finishes == {i: ch.finish_reason for i, ch in enumerate(plain.choices)}
    assert usage.completion_tokens == plain.usage.completion_tokens


def test_stream_is_server_sent_events_ending_with_done(serve):
    body = {"model": "best_of_n", "messages": COUNT, "max_tokens": 8, "stream": True, "ponder": {"n": 1}}
    with httpx.stream("POST", serve[0] + "/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        frames = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert frames[-1] == "data: [DONE]"
    assert all(json.loads(f[6:])["object"] == "chat.completion.chunk" for f in frames[:-1])


def test_stream_reports_search_progress_in_the_ponder_field(client):
    stream = client.chat.completions.create(
        model="beam_search", messages=COUNT, max_tokens=48, seed=2, stream=True,
        extra_body={"ponder": {"n": 4, "width": 2, "step_tokens": 16, "max_steps": 3}, "scorer": "arithmetic"},
    )
    events, text = [], ""
    for c in stream:
        if (c.model_extra or {}).get("ponder"):
            events.append(c.model_extra["ponder"])
        text += "".join(ch.delta.content or "" for ch in c.choices)
    kinds = {e["event"] for e in events}
    assert {"added", "scored"} <= kinds
    assert all("generated_tokens" in e["ledger"] for e in events)
    assert text


# -- 3. the whole conversation -------------------------------------------------------------------
def test_the_whole_conversation_goes_through_the_chat_template(client, tokenizer):
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    r = client.chat.completions.create(model="best_of_n", messages=messages, max_tokens=8, temperature=0, extra_body={"ponder": {"n": 1}})
    # every turn, not only the system message and the last question
    assert r.usage.prompt_tokens == len(tokenizer.chat(messages)) > len(tokenizer.chat([messages[0], messages[-1]]))


# -- 4. text completions and routes ---------------------------------------------------------------
def test_text_completions_send_the_prompt_as_is(client, tokenizer):
    prompt = "1, 2, 3, 4,"
    r = client.completions.create(model="best_of_n", prompt=prompt, max_tokens=6, temperature=0, extra_body={"ponder": {"n": 1}})
    assert r.object == "text_completion" and r.choices[0].text
    assert r.usage.prompt_tokens == len(tokenizer.encode(prompt))
    assert r.usage.completion_tokens <= 6


def test_an_unknown_route_is_a_json_404_naming_the_routes(serve):
    r = httpx.post(serve[0] + "/embeddings", json={"input": "x"}, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 404
    assert "POST /v1/chat/completions" in r.json()["error"]["message"] and "POST /v1/completions" in r.json()["error"]["message"]


# -- 5. hostile clients ---------------------------------------------------------------------------
def test_without_the_api_key_a_json_401(serve):
    bad = openai.OpenAI(base_url=serve[0], api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model="ponder", messages=COUNT, max_tokens=4)
    assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
    assert httpx.post(serve[0] + "/chat/completions", json={}).status_code == 401


def test_bad_input_is_a_json_error_never_a_plain_text_500(serve):
    auth = {"Authorization": f"Bearer {KEY}"}
    cases = [
        ({"model": "ponder", "messages": COUNT, "seed": "abc"}, "seed"),
        ({"model": "ponder", "messages": [{"role": "user", "content": "x " * 3000}], "max_tokens": 4}, "messages"),
        ({"model": "nope", "messages": COUNT}, "model"),
    ]
    for body, param in cases:
        r = httpx.post(serve[0] + "/chat/completions", json=body, headers=auth, timeout=120)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["error"]["message"] and r.json()["error"]["param"] == param
    r = httpx.post(serve[0] + "/chat/completions", content=b"{not json", headers=auth)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("body:")


def test_a_request_never_spends_more_than_the_server_cap(client):
    with pytest.raises(openai.BadRequestError, match="over this server's cap"):
        client.chat.completions.create(model="ponder", messages=COUNT, max_tokens=CAP + 1)
    # eight greedy counts to 200 would each run past the cap alone: together they stop at it
    long_count = [{"role": "user", "content": "Count from 1 to 200, one number per line."}]
    r = client.chat.completions.create(model="best_of_n", messages=long_count, max_tokens=CAP, temperature=0, extra_body={"ponder": {"n": 8}})
    assert CAP // 2 < r.usage.completion_tokens <= CAP


LONG = dict(model="best_of_n", messages=COUNT, max_tokens=CAP, temperature=0.8, seed=1, extra_body={"ponder": {"n": 1}})


def test_a_disconnected_stream_aborts_its_engine_requests(serve, client):
    url = serve[0]
    stream = client.chat.completions.create(stream=True, **LONG)
    next(iter(stream))  # the role chunk: the solve is running
    assert wait_for(url, lambda h: h["engine"]["unfinished_requests"] > 0, 30)["engine"]["unfinished_requests"] > 0
    stream.close()
    h = wait_for(url, lambda h: h["engine"]["unfinished_requests"] == 0 and h["running"] == 0, 1.0)
    assert h["engine"]["unfinished_requests"] == 0 and h["running"] == 0


def test_a_disconnected_plain_request_aborts_its_engine_requests(serve):
    url = serve[0]

    async def go() -> None:
        body = {"model": "best_of_n", "messages": COUNT, "max_tokens": CAP, "temperature": 0.8, "ponder": {"n": 1}}
        async with httpx.AsyncClient(timeout=120) as http:
            task = asyncio.create_task(http.post(url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}))
            for _ in range(600):
                if health(url)["engine"]["unfinished_requests"] > 0:
                    break
                await asyncio.sleep(0.05)
            assert health(url)["engine"]["unfinished_requests"] > 0
            task.cancel()  # the client goes away mid-request
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())
    h = wait_for(url, lambda h: h["engine"]["unfinished_requests"] == 0 and h["running"] == 0, 1.0)
    assert h["engine"]["unfinished_requests"] == 0 and h["running"] == 0


def test_more_requests_than_the_limit_get_a_json_429(serve, client):
    url = serve[0]
    streams = [client.chat.completions.create(stream=True, **LONG) for _ in range(2)]
    try:
        for s in streams:
            next(iter(s))
        assert wait_for(url, lambda h: h["running"] == 2, 30)["running"] == 2
        with pytest.raises(openai.RateLimitError) as e:
            client.chat.completions.create(model="ponder", messages=COUNT, max_tokens=4)
        assert e.value.status_code == 429 and e.value.body["type"] == "rate_limit_error"
    finally:
        for s in streams:
            s.close()
    assert wait_for(url, lambda h: h["running"] == 0 and h["engine"]["unfinished_requests"] == 0, 1.0)["running"] == 0
    assert client.chat.completions.create(model="ponder", messages=COUNT, max_tokens=4).choices  # room again


# -- 6. thinking budgets (the assistant turn opens <think>; the model never closes it) -------------
THINK = dict(messages=COUNT, max_tokens=96, temperature=0, seed=9)


def test_max_thinking_tokens_cuts_thinking_and_returns_it_as_reasoning_content(client, tokenizer):
    r = client.chat.completions.create(model="budget_forcing", **THINK, extra_body={"max_thinking_tokens": 20, "ponder": {"answer_tokens": 8}})
    ledger, message = ponder_field(r)["ledger"], r.choices[0].message
    assert ledger["thinking_tokens"] == 20 and 0 < ledger["answer_tokens"] <= 8 and ponder_field(r)["metrics"]["thinking_cut"] == 1
    assert message.content.startswith("Final Answer: \\boxed{")
    assert 0 < len(tokenizer.encode(message.model_extra["reasoning_content"])) <= 20
    # any strategy that samples whole solutions: each of best_of_n's samples is cut alike
    both = client.chat.completions.create(model="best_of_n", **THINK, extra_body={"max_thinking_tokens": 12, "ponder": {"n": 2}})
    assert ponder_field(both)["ledger"]["thinking_tokens"] == 24 and "reasoning_content" in both.choices[0].message.model_extra
    with pytest.raises(openai.BadRequestError, match="max_thinking_tokens: strategy beam_search does not sample whole solutions"):
        client.chat.completions.create(model="beam_search", **THINK, extra_body={"max_thinking_tokens": 12, "scorer": "arithmetic"})
    with pytest.raises(openai.BadRequestError, match=r"min_thinking_tokens: 30 is above max_thinking_tokens \(20\)"):
        client.chat.completions.create(model="budget_forcing", **THINK, extra_body={"max_thinking_tokens": 20, "min_thinking_tokens": 30})


def test_reasoning_content_streams_as_the_thinking_grows(client):
    ask = dict(model="budget_forcing", **THINK, extra_body={"max_thinking_tokens": 24, "ponder": {"answer_tokens": 8}})
    plain = client.chat.completions.create(**ask).choices[0].message
    order, reasoning, content = [], "", ""
    for c in client.chat.completions.create(stream=True, **ask):
        if (c.model_extra or {}).get("ponder"):
            order.append("event")
        for ch in c.choices:
            piece = (ch.delta.model_extra or {}).get("reasoning_content")
            if piece:
                order.append("reasoning")
                reasoning += piece
            content += ch.delta.content or ""
    assert reasoning == plain.model_extra["reasoning_content"] and content == plain.content
    # it grew while the sample was generated: before the sample's node reached the tree
    assert order.index("reasoning") < order.index("event") and order.count("reasoning") > 5


# -- the request limits, unit by unit (scripted engine) -------------------------------------------
def steps(call):
    return "".join(f"step {i} of seed {call.seed}.\n\n" for i in range(40))


async def test_a_trajectory_is_capped_across_continuations():
    inner = ScriptedBackend(steps)
    prompt = inner.tokenizer.chat([{"role": "user", "content": "q"}])
    b = LimitedBackend(inner, RequestLimits(sample_tokens=40), prompt)
    ids, finishes = list(prompt), []
    for _ in range(5):
        (c,) = await b.generate(ids, Sampling(max_tokens=25, stop=("\n\n",)))
        ids += c.token_ids
        finishes.append(c.finish_reason)
    assert len(ids) - len(prompt) == 40
    # "step 0 of seed None.\n\n" is 22 tokens, the second step is cut at 18; then no engine call at all
    assert finishes == ["stop", "length", "length", "length", "length"] and inner.stats().requests == 2


async def test_concurrent_calls_never_pass_the_request_budget():
    inner = ScriptedBackend(steps)
    b = LimitedBackend(inner, RequestLimits(budget=100, stop=("of seed",)), [1, 2, 3])
    outs = await asyncio.gather(*(b.generate([1, 2, 3, i], Sampling(n=3, max_tokens=30, seed=i)) for i in range(4)))
    generated = sum(c.usage.generated_tokens for out in outs for c in out)
    assert generated <= 100 and inner.stats().usage.generated_tokens == generated
    # a client stop string ends the trajectory ("eos"), unlike a strategy's step delimiter
    assert [c.finish_reason for c in outs[0]] == ["eos"] * 3
    assert [c.finish_reason for c in outs[3]] == ["length"] * 3 and not any(c.token_ids for c in outs[3])


# -- in front of a vLLM server (the session's) instead of an in-process engine ----------------------
def test_serve_in_front_of_a_vllm_server(vllm_server, tmp_path):
    command = lambda port: [PONDER, "serve", "--port", str(port), "--endpoint", vllm_server[0], "-v"]  # noqa: E731
    with served(command, tmp_path / "serve.log", timeout=120) as (url, _):
        c = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=120)
        ask = dict(model="best_of_n", messages=COUNT, max_tokens=16, n=2, seed=4, extra_body={"ponder": {"n": 3}})
        plain = c.chat.completions.create(**ask)
        assert len(plain.choices) == 2 and plain.usage.completion_tokens <= 3 * 16
        streamed = "".join(ch.delta.content or "" for chunk in c.chat.completions.create(stream=True, **ask) for ch in chunk.choices if ch.index == 0)
        assert streamed == plain.choices[0].message.content
