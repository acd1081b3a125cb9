"""What one `ponder serve` request may cause is capped whatever the client sends: the policy's
and the scorer's generated tokens together, verifier calls, wall time. In process on the
scripted backend with the official client (the real server's caps: tests/app/serve/test_server.py)."""

from __future__ import annotations

import json

import openai
from aiohttp.test_utils import TestServer

from ponder.app.serve.server import ServeConfig, make_app
from ponder.backends.scripted import ScriptedBackend

ASK = [{"role": "user", "content": "What is 3 + 4?"}]


async def ask(backend, config: ServeConfig, **create):
    server = TestServer(make_app(backend, config))
    await server.start_server()
    try:
        client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="none", max_retries=0)
        reply = await client.chat.completions.create(messages=ASK, **create)
        return json.loads(reply.model_dump_json())
    finally:
        await server.close()


async def test_a_judges_critiques_come_out_of_the_request_token_cap():
    def script(call):  # short answers, long critiques
        return "an error in every line of it " * 40 if "Check it step by step" in call.prompt else "It is \\boxed{8}."

    b = ScriptedBackend(script)
    reply = await ask(b, ServeConfig(scorer="judge", max_tokens_per_request=300), model="self_refine",
                      extra_body={"ponder": {"feedback": "scorer", "feedback_tokens": 4000, "max_rounds": 3}})
    ledger = reply["ponder"]["ledger"]
    assert ledger["verifier_generated_tokens"] > 0  # the judge model wrote critiques
    # policy and scorer together, as the engine counted them, stay under the cap
    assert ledger["generated_tokens"] + ledger["verifier_generated_tokens"] == b.stats().usage.generated_tokens <= 300


def steps(call):  # thirty distinct steps, then an answer
    return f"step {call.seed}: 2 + 2 = 4.\n\n" if call.generated.count("\n\n") < 30 else "\\boxed{7}"


async def test_verifier_calls_and_wall_time_are_capped_per_request():
    b = ScriptedBackend(steps, token_delay_s=0.001)
    config = ServeConfig(scorer="arithmetic", max_verifier_calls_per_request=10, max_seconds_per_request=30)
    reply = await ask(b, config, model="beam_search", extra_body={"ponder": {"n": 4, "width": 2, "max_steps": 40}})
    assert reply["ponder"]["ledger"]["verifier_calls"] == 10  # the client asked for up to 160
    slow = ScriptedBackend(steps, token_delay_s=0.02)
    reply = await ask(slow, ServeConfig(scorer="arithmetic", max_seconds_per_request=1.0), model="beam_search",
                      extra_body={"ponder": {"n": 4, "width": 2, "max_steps": 40}})
    assert reply["ponder"]["ledger"]["wall_s"] < 3.0  # the search alone would take about 9 s
    assert reply["ponder"]["ledger"]["aborted_requests"] > 0
