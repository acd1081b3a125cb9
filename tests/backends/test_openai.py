"""The HTTP backend against a real `vllm serve` on 127.0.0.1, and `ponder serve` in front of it;
its fault paths against a tiny OpenAI-style server that misbehaves on demand (a real vLLM
server cannot be made to send Retry-After, a torn body or no token ids)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time

import aiohttp
import pytest
from aiohttp import web

from ponder.backends.base import Sampling
from ponder.backends.loop import LoopThread
from ponder.backends.openai import BackendError, OpenAIBackend, OpenAIConfig

from ..commands import PONDER
from ..servers import free_port, wait_ready

QUESTION = [{"role": "user", "content": "Name three colours of the sea, and say what 17 + 25 is."}]


@pytest.fixture
def client(vllm_server):
    return OpenAIBackend(OpenAIConfig(endpoints=[vllm_server[0]], backoff_s=0.05))


async def test_generate_is_token_exact_and_reports_cached_tokens(client):
    ids = client.tokenizer.chat([{"role": "user", "content": "Count from 1 to 40, one number per line."}])
    (first,) = await client.generate(ids, Sampling(temperature=0.0, max_tokens=40))
    assert first.finish_reason == "length" and len(first.token_ids) == 40
    assert client.tokenizer.decode(first.token_ids).strip() == first.text.strip()
    prefix = ids + list(first.token_ids[:30])
    (cont,) = await client.generate(prefix, Sampling(temperature=0.0, max_tokens=8))
    assert cont.usage.cached_tokens == (len(prefix) - 1) // 32 * 32
    assert cont.token_ids == first.token_ids[30:38]
    outs = await client.generate(ids, Sampling(n=4, temperature=1.0, max_tokens=16, seed=3, stop=(".",), logprobs=2))
    # four samples, four requests, each reading the (already sent) prompt's full blocks from the cache
    assert [c.usage.prompt_tokens for c in outs] == [len(ids)] * 4
    assert [c.usage.cached_tokens for c in outs] == [(len(ids) - 1) // 32 * 32] * 4
    assert all(len(c.token_logprobs) == len(c.token_ids) for c in outs)
    assert all(c.text.endswith(".") for c in outs if c.finish_reason == "stop")
    await client.close()


async def test_stream_matches_generate_and_cancel_closes_it(client):
    ids = client.tokenizer.chat(QUESTION)
    s = Sampling(temperature=0.0, max_tokens=24)
    got, last = [], None
    async for d in client.stream(ids, s):
        got += d.token_ids
        last = d
    (g,) = await client.generate(ids, s)
    assert tuple(got) == g.token_ids and last.usage.generated_tokens == len(got) and last.finish_reason == g.finish_reason
    before = client.stats().aborted_requests
    n = 0
    async for d in client.stream(ids, Sampling(temperature=1.0, max_tokens=400, seed=1)):
        n += 1
        if n == 3:
            break
    await asyncio.sleep(0.3)  # the abandoned generator is closed by the loop's finaliser
    assert client.stats().aborted_requests == before + 1
    await client.close()


async def test_logprobs_through_http_agree(client):
    ids = client.tokenizer.chat(QUESTION)
    (g,) = await client.generate(ids, Sampling(temperature=0.0, max_tokens=4, logprobs=1))
    lps = await client.prompt_logprobs(ids + list(g.token_ids), list(range(len(ids), len(ids) + len(g.token_ids))))
    assert lps == pytest.approx(list(g.token_logprobs), abs=2e-3)
    (nxt,) = await client.next_token_logprobs(ids, [g.token_ids[0]])
    assert nxt == pytest.approx(g.token_logprobs[0], abs=2e-3)
    await client.close()


async def test_prefix_affinity_and_failover(vllm_server):
    live = vllm_server[0]
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    b = OpenAIBackend(OpenAIConfig(endpoints=[live, dead, live.replace("127.0.0.1", "localhost")], backoff_s=0.01, served_model="smollm2"))
    prompts = [b.tokenizer.chat([{"role": "user", "content": f"Count to {i}, slowly and carefully, one number per line."}]) for i in range(12)]
    assert len({b.route(p)[0] for p in prompts}) == 3  # new prompts spread over the servers
    outs = await asyncio.gather(*(b.generate(p, Sampling(max_tokens=4)) for p in prompts))
    assert all(o[0].token_ids for o in outs)  # prompts routed to the dead server moved on
    assert b.sent[dead] > 0 and b.retried >= b.sent[dead]
    for p, (o,) in zip(prompts, outs):
        # a continuation goes where its prefix went: a live server, the same one each time
        went = b.route(p)[0]
        assert went != dead and b.route(p + list(o.token_ids))[0] == went
    sent = dict(b.sent)
    conts = await asyncio.gather(*(b.generate(p + list(o.token_ids), Sampling(max_tokens=4)) for p, (o,) in zip(prompts, outs)))
    assert b.sent[dead] == sent[dead]  # no continuation tried the dead server
    assert sum(c[0].usage.cached_tokens for c in conts) > 0
    # the dead server cools off: new prompts that would go there first go elsewhere at once
    fresh = [b.tokenizer.chat([{"role": "user", "content": f"Spell the word {i} backwards."}]) for i in range(40)]
    dead_first = [p for p in fresh if b.route(p)[0] == dead][:3]
    assert len(dead_first) == 3
    for p in dead_first:
        (o,) = await b.generate(p, Sampling(max_tokens=2))
        assert o.token_ids
    assert b.sent[dead] == sent[dead]
    await b.close()


async def test_logprob_calls_report_the_servers_cached_tokens(client):
    ids = client.tokenizer.chat([{"role": "user", "content": "Is the sea blue? Answer yes or no, then explain at length. " * 3}])
    await client.generate(ids, Sampling(max_tokens=1))  # puts the prompt in the server's prefix cache
    yes, no = client.tokenizer.encode("Yes")[0], client.tokenizer.encode("No")[0]
    before = client.stats()
    await client.next_token_logprobs(ids, [yes, no])
    after = client.stats()
    assert after.requests - before.requests == 2
    assert after.usage.cached_tokens - before.usage.cached_tokens == 2 * ((len(ids) - 1) // 32 * 32) > 0
    await client.close()


async def test_bad_request_is_one_clear_error(client):
    with pytest.raises(BackendError, match="HTTP 400"):
        await client.generate([1, 2, 3], Sampling(max_tokens=5000))  # beyond max-model-len
    await client.close()


def test_ponder_serve_answers_with_full_usage(vllm_server, tmp_path):
    url = vllm_server[0]
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([PONDER, "serve", "--port", str(port), "--endpoint", url], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health", proc, 120, log)

        async def ask():
            async with aiohttp.ClientSession() as s:
                body = {"model": "best_of_n", "messages": [{"role": "user", "content": "What is 12 + 7?"}], "ponder": {"n": 3, "max_tokens": 48}}
                async with s.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body) as r:
                    ok = (r.status, await r.json())
                bad = {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
                async with s.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=bad) as r:
                    err = (r.status, await r.json())
                async with s.get(f"http://127.0.0.1:{port}/v1/models") as r:
                    models = await r.json()
            return ok, err, models

        (status, data), (bad_status, bad), models = asyncio.run(ask())
        assert status == 200 and data["choices"][0]["message"]["content"]
        assert len(data["ponder"]["candidates"]) == 3
        # usage counts all three samples, not only the returned one
        assert data["usage"]["completion_tokens"] == data["ponder"]["ledger"]["generated_tokens"] > len(data["choices"][0]["message"]["content"]) // 10
        assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]
        assert bad_status == 400 and "unknown strategy 'nope'" in bad["error"]["message"]
        assert {"ponder", "beam_search"} <= {m["id"] for m in models["data"]}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()


async def test_yaml_run_over_http_with_a_second_backend_for_the_prm(vllm_server, tmp_path):
    from ponder.app.run.batch import execute, prepare
    from ponder.app.run.run_config import load_run_config

    data = tmp_path / "q.jsonl"
    data.write_text("".join(f'{{"id": "q{i}", "problem": "What is {i} + 1?", "answer": "{i + 1}"}}\n' for i in range(3)))
    http = f"{{kind: openai, endpoints: ['{vllm_server[0]}'], options: {{served_model: smollm2}}}}"
    cfg = tmp_path / "http.yaml"
    cfg.write_text(
        f"name: http\nbackend: {http}\n"
        "strategy: {name: beam_search, config: {n: 2, width: 1, max_steps: 2, step_tokens: 24, final_tokens: 32}}\n"
        f"scorer: {{name: logprob, options: {{layout: chat}}, backend: {http}}}\n"
        f"dataset: {{name: '{data}'}}\noutput_dir: {tmp_path / 'runs'}\n"
    )
    config = load_run_config(cfg)
    outcome = await execute(config, prepare(config, None, None), progress=False)
    assert outcome.summary["problems"] == 3 and outcome.summary["verifier_calls"] > 0
    assert outcome.summary["tokens"]["cached"] > 0  # beam steps continued token-exact prefixes on the server


CACHED = 32


class FakeServer:
    """Answers POST /v1/completions; `plan` lists what the next requests get ("ok" after it)."""

    def __init__(self) -> None:
        self.plan: list[str] = []
        self.hits: list[float] = []

    def answer(self, body: dict, ids: bool) -> dict:
        prompt = body["prompt"]
        choice = {"index": 0, "text": "hi!", "finish_reason": "stop", "stop_reason": "!", "logprobs": None}
        if ids:
            choice["token_ids"] = [104, 105, 33]
        if body.get("prompt_logprobs") is not None:
            choice["prompt_logprobs"] = [None] + [{str(t): {"logprob": -1.5}} for t in prompt[1:]]
        if body.get("allowed_token_ids"):
            choice["logprobs"] = {"token_logprobs": [-0.25], "top_logprobs": None}
        usage = {"prompt_tokens": len(prompt), "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": CACHED}}
        return {"choices": [choice], "usage": usage}

    async def completions(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(time.monotonic())
        body = await request.json()
        action = self.plan.pop(0) if self.plan else "ok"
        if action.startswith("429"):
            return web.Response(status=429, text="busy", headers={"Retry-After": action.split(":")[1]})
        if action == "truncated":  # promises more bytes than it sends, then hangs up
            resp = web.StreamResponse(headers={"Content-Length": "400", "Content-Type": "application/json"})
            await resp.prepare(request)
            await resp.write(b'{"choices": [{"ind')
            request.transport.close()
            return resp
        data = self.answer(body, ids=action != "no_ids")
        if action.startswith("slow"):  # "slow:<chunks>:<seconds between them>", a long generation
            return await self.slow_stream(request, data, int(action.split(":")[1]), float(action.split(":")[2]))
        if not body.get("stream"):
            return web.json_response(data)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        first = {**data["choices"][0], "text": "hi", "finish_reason": None}
        last = dict(data["choices"][0], text="!")
        if "token_ids" in first:
            first["token_ids"], last["token_ids"] = [104, 105], [33]
        for chunk in ({"choices": [first]}, {"choices": [last]}, {"choices": [], "usage": data["usage"]}):
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp


    async def slow_stream(self, request: web.Request, data: dict, chunks: int, gap_s: float) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(chunks):
            await asyncio.sleep(gap_s)
            last = i == chunks - 1
            choice = {"index": 0, "text": "a", "token_ids": [97], "logprobs": None,
                      "finish_reason": "length" if last else None, "stop_reason": None}
            await resp.write(f"data: {json.dumps({'choices': [choice]})}\n\n".encode())
        usage = {**data["usage"], "completion_tokens": chunks}
        await resp.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp


@pytest.fixture
def fake():
    """(server state, base url); the server runs on its own loop thread, so tests may use any loop."""
    state, thread, port = FakeServer(), LoopThread("fake-openai"), free_port()
    app = web.Application()
    app.router.add_post("/v1/completions", state.completions)
    runner = web.AppRunner(app)

    async def start():
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    thread.call(start())
    state.shutdown = lambda: thread.call(runner.cleanup())
    yield state, f"http://127.0.0.1:{port}/v1"
    state.shutdown()
    thread.stop()


def backend(*endpoints: str, **options) -> OpenAIBackend:
    return OpenAIBackend(OpenAIConfig(endpoints=list(endpoints), served_model="fake", backoff_s=0.01, **options))


async def test_retry_after_is_honoured(fake):
    state, url = fake
    state.plan = ["429:1"]
    b = backend(url)
    (c,) = await b.generate([1, 2, 3], Sampling(max_tokens=3))
    assert c.token_ids == (104, 105, 33) and b.retried == 1
    assert state.hits[1] - state.hits[0] >= 0.95  # waited as told, not the 10 ms backoff
    await b.close()


async def test_a_torn_response_body_is_retried(fake):
    state, url = fake
    state.plan = ["truncated"]
    b = backend(url)
    (c,) = await b.generate([1, 2, 3], Sampling(max_tokens=3))
    assert c.text == "hi!" and len(state.hits) == 2 and b.retried == 1
    await b.close()


async def test_missing_token_ids_are_an_error_unless_retokenising_is_asked_for(fake):
    state, url = fake
    strict = backend(url)
    state.plan = ["no_ids"]
    with pytest.raises(BackendError, match="no token ids.*retokenize_missing_ids"):
        await strict.generate([1, 2, 3], Sampling(max_tokens=3))
    state.plan = ["no_ids"]
    with pytest.raises(BackendError, match="no token ids"):
        async for _ in strict.stream([1, 2, 3], Sampling(max_tokens=3)):
            pass
    loose = backend(url, retokenize_missing_ids=True)
    state.plan = ["no_ids"]
    (c,) = await loose.generate([1, 2, 3], Sampling(max_tokens=3))
    assert c.token_ids == tuple(loose.tokenizer.encode("hi!"))
    await strict.close()
    await loose.close()


async def test_a_failed_endpoint_cools_off_for_every_new_prompt(fake):
    _, live = fake
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    b = backend(dead, live, cooloff_s=1.0)
    prompts = [[7, i, 9] for i in range(60)]
    dead_first = [p for p in prompts if b.route(p)[0] == dead][:4]
    assert len(dead_first) == 4
    for p in dead_first[:3]:
        (c,) = await b.generate(p, Sampling(max_tokens=3))
        assert c.text == "hi!"
    assert b.sent[dead] == 1  # only the first prompt paid for the dead server
    await asyncio.sleep(1.1)
    await b.generate(dead_first[3], Sampling(max_tokens=3))
    assert b.sent[dead] == 2  # after the cool-off it is tried again
    await b.close()


async def test_logprob_calls_count_the_servers_cached_tokens(fake):
    _, url = fake
    b = backend(url)
    lps = await b.prompt_logprobs([5, 6, 7, 8], [1, 3])
    assert lps == [-1.5, -1.5]
    assert await b.next_token_logprobs([5, 6, 7, 8], [10, 11]) == [-0.25, -0.25]
    s = b.stats()
    assert s.requests == 3 and s.usage.cached_tokens == 3 * CACHED
    await b.close()


def test_close_closes_the_sessions_of_every_loop(fake, monkeypatch):
    _, url = fake
    made = []
    original = OpenAIBackend._new_session

    def recording(self):
        made.append(original(self))
        return made[-1]

    monkeypatch.setattr(OpenAIBackend, "_new_session", recording)
    b = backend(url)
    for _ in range(2):  # two loops, each ended without close(): the second must not reuse the first's session
        (c,) = asyncio.run(b.generate([1, 2], Sampling(max_tokens=3)))
        assert c.text == "hi!"
    assert len(made) == 2 and made[0] is not made[1]
    helper = LoopThread("other-loop")  # a session made on a loop that is still running elsewhere
    helper.call(b.generate([1, 2], Sampling(max_tokens=3)))
    assert len(made) == 3
    asyncio.run(b.close())
    helper.stop()
    assert all(s.closed for s in made)


async def test_a_server_gone_mid_run_is_one_clear_error(fake):
    state, url = fake
    b = backend(url, retries=2)
    await b.generate([1, 2], Sampling(max_tokens=3))
    state.shutdown()  # the port closes: every later try is refused
    with pytest.raises(BackendError, match="request failed after 3 attempts.*ClientConnectorError"):
        await b.generate([1, 2], Sampling(max_tokens=3))
    await b.close()


async def test_a_stream_longer_than_the_timeout_survives_while_chunks_keep_coming(fake):
    # timeout_s bounds the wait for each next chunk of a stream, not its whole length: a
    # 2.5 s stream under a 1 s timeout stands for a chain of thought longer than 600 s
    state, url = fake
    state.plan = ["slow:10:0.25"]
    b = backend(url, timeout_s=1.0, retries=0)
    t0 = time.monotonic()
    deltas = [d async for d in b.stream([1, 2, 3], Sampling(max_tokens=10))]
    assert time.monotonic() - t0 > 2.0
    assert sum(len(d.token_ids) for d in deltas) == 10 and deltas[-1].finish_reason == "length"
    assert b.stats().usage.generated_tokens == 10
    state.plan = ["slow:2:1.5"]  # a server that stops sending for longer than the timeout is a failure
    with pytest.raises(BackendError, match="SocketTimeoutError"):
        async for _ in b.stream([1, 2, 3], Sampling(max_tokens=10)):
            pass
    await b.close()


async def test_a_stream_cut_before_its_first_token_is_recorded_as_an_abort(fake):
    # the server took the request (its prompt was computed): leaving before any token is still a request
    state, url = fake
    state.plan = ["slow:4:0.5"]
    b = backend(url, retries=0)

    async def consume():
        async for _ in b.stream([1, 2, 3], Sampling(max_tokens=10)):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    s = b.stats()
    assert (s.requests, s.aborted_requests, s.usage.prompt_tokens, s.usage.generated_tokens) == (1, 1, 3, 0)
    await b.close()
