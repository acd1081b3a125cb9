"""The HTTP backend's fault paths, against a tiny OpenAI-style server that misbehaves on demand
(a real vLLM server cannot be made to send Retry-After, a torn body or no token ids)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import web

from ponder.backends.base import Sampling
from ponder.backends.loop import LoopThread
from ponder.backends.openai import BackendError, OpenAIBackend, OpenAIConfig

from .servers import free_port

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
