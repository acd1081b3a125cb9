"""The HTTP backend against a real `vllm serve` on 127.0.0.1, and `ponder serve` in front of it.

Fault paths a real server cannot produce on demand are in test_http_faults.py."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess

import aiohttp
import pytest

from ponder.backends.base import Sampling
from ponder.backends.openai import BackendError, OpenAIBackend, OpenAIConfig

from .servers import free_port, wait_ready
from .test_cli import PONDER

# `vllm_server` is the session's real `vllm serve` (tests/conftest.py): (base url, process)

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
