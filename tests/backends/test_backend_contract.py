"""The Backend contract, run against both the real vLLM engine and the scripted backend."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.base import Backend, Sampling
from ponder.backends.scripted import ScriptedBackend

QUESTION = [{"role": "user", "content": "Write three sentences about the sea and the sky, and what 17 + 25 is."}]
COUNT = [{"role": "user", "content": "Count from 1 to 40, one number per line."}]  # a long greedy answer


def scripted() -> ScriptedBackend:
    def script(call):
        # varies with the seed like a sampler would, fixed under greedy decoding
        k = 0 if call.sampling.temperature == 0 else (call.seed or 0) % 5
        return f"Take {k}. The sea is wide.\n\nThe sky is blue.\n\nSo 17 + 25 = 42. " + "Waves roll on. " * 30

    return ScriptedBackend(script, token_delay_s=0.001)


@pytest.fixture(params=["scripted", "vllm"])
def backend(request) -> tuple[Backend, int]:
    """(backend, block size)."""
    if request.param == "scripted":
        b = scripted()
        return b, 16
    eng = request.getfixturevalue("engine")
    return eng, eng.config.block_size


def prompt(b: Backend) -> list[int]:
    return b.tokenizer.chat(QUESTION)


async def test_greedy_is_deterministic(backend):
    b, _ = backend
    s = Sampling(temperature=0.0, max_tokens=24)
    first, second = await b.generate(prompt(b), s), await b.generate(prompt(b), s)
    assert first[0].token_ids == second[0].token_ids
    assert first[0].text and first[0].usage.generated_tokens == len(first[0].token_ids)


async def test_token_exact_continuation_hits_prefix_cache(backend):
    b, block = backend
    ids = b.tokenizer.chat(COUNT)
    (first,) = await b.generate(ids, Sampling(temperature=0.0, max_tokens=40))
    prefix = ids + list(first.token_ids[:30])
    (cont,) = await b.generate(prefix, Sampling(temperature=0.0, max_tokens=8))
    full_blocks = (len(prefix) - 1) // block * block  # the last prompt token is always computed
    assert cont.usage.prompt_tokens == len(prefix)
    assert cont.usage.cached_tokens == full_blocks
    # greedy continuation of the exact prefix reproduces the original greedy tokens
    assert first.finish_reason == "length" and len(first.token_ids) == 40
    assert cont.token_ids[:8] == first.token_ids[30:38]


async def test_n_samples_are_n_requests_sharing_the_prompt_through_the_cache(backend):
    b, block = backend
    ids = prompt(b)
    before = b.stats()
    outs = await b.generate(ids, Sampling(n=8, temperature=1.0, max_tokens=24, seed=7))
    after = b.stats()
    assert len(outs) == 8
    # each sample is one engine request with the whole prompt, as the engine counts it; every
    # sample but the first reads the prompt's full blocks from the prefix cache
    assert [c.usage.prompt_tokens for c in outs] == [len(ids)] * 8
    full_blocks = (len(ids) - 1) // block * block
    assert full_blocks > 0 and sorted(c.usage.cached_tokens for c in outs)[1:] == [full_blocks] * 7
    assert after.requests - before.requests == 8
    assert after.usage.prompt_tokens - before.usage.prompt_tokens == 8 * len(ids)
    assert len({c.text for c in outs}) >= 2  # samples differ


async def test_stop_string_is_kept_and_reported(backend):
    b, _ = backend
    (c,) = await b.generate(prompt(b), Sampling(temperature=0.0, max_tokens=200, stop=(".",)))
    if c.finish_reason == "stop":
        assert c.stop_string == "." and c.text.endswith(".")
        assert b.tokenizer.decode(c.token_ids).endswith(".")
    else:  # the model never wrote a period within 200 tokens
        assert "." not in c.text


async def test_cancelling_a_stream_aborts_the_request(backend):
    b, _ = backend
    before = b.stats()
    got = 0
    async for d in b.stream(prompt(b), Sampling(temperature=1.0, max_tokens=400, seed=3)):
        got += len(d.token_ids)
        if got >= 3:
            break
    await asyncio.sleep(0.3)
    after = b.stats()
    assert after.aborted_requests == before.aborted_requests + 1
    assert after.usage.generated_tokens - before.usage.generated_tokens < 50  # stopped within a few tokens
    if hasattr(b, "unfinished_requests"):
        assert b.unfinished_requests() == 0  # the engine no longer holds it


async def test_stream_to_the_end_matches_generate(backend):
    b, _ = backend
    s = Sampling(temperature=0.0, max_tokens=20)
    ids, last = [], None
    async for d in b.stream(prompt(b), s):
        ids += d.token_ids
        last = d
    (g,) = await b.generate(prompt(b), s)
    assert tuple(ids) == g.token_ids
    assert last.finish_reason == g.finish_reason and last.usage.generated_tokens == len(ids)


async def test_prompt_logprobs_equal_generation_logprobs(backend):
    b, _ = backend
    ids = prompt(b)
    (g,) = await b.generate(ids, Sampling(temperature=0.0, max_tokens=6, logprobs=1))
    full = ids + list(g.token_ids)
    positions = list(range(len(ids), len(full)))
    lps = await b.prompt_logprobs(full, positions)
    assert lps == pytest.approx(list(g.token_logprobs), abs=2e-3)
    assert all(lp <= 0 for lp in lps)
    with pytest.raises(ValueError, match="position"):
        await b.prompt_logprobs(full, [len(full)])


def test_sampling_validation_names_the_field():
    with pytest.raises(ValueError, match="max_tokens"):
        Sampling(max_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        Sampling(temperature=-1)


async def test_next_token_logprobs_match_prompt_logprobs(backend):
    b, _ = backend
    ids = prompt(b)
    cands = [b.tokenizer.encode("Yes")[0], b.tokenizer.encode("No")[0], b.tokenizer.encode("The")[0]]
    got = await b.next_token_logprobs(ids, cands)
    for c, lp in zip(cands, got):
        (want,) = await b.prompt_logprobs(ids + [c], [len(ids)])
        assert lp == pytest.approx(want, abs=2e-3)
    assert len(set(round(x, 4) for x in got)) == 3 and all(x <= 0 for x in got)


async def test_a_stream_left_early_reports_its_cached_tokens(backend):
    b, block = backend
    ids = b.tokenizer.chat([{"role": "user", "content": "Tell me a long story about a lighthouse keeper. " * 6}])
    await b.generate(ids, Sampling(max_tokens=2))  # puts the prompt's blocks in the prefix cache
    before = b.stats()
    first = None
    async for d in b.stream(ids, Sampling(temperature=1.0, max_tokens=300, seed=4)):
        first = d
        break
    await asyncio.sleep(0.3)
    after = b.stats()
    expected = (len(ids) - 1) // block * block
    assert expected > 0
    assert first.cached_tokens == expected  # known on the first delta, before the stream ends
    assert after.aborted_requests == before.aborted_requests + 1
    assert after.usage.cached_tokens - before.usage.cached_tokens == expected


async def test_make_backend_builds_every_kind_and_names_bad_options():
    from pydantic import ValidationError

    from ponder.backends import make_backend
    from ponder.backends.openai import OpenAIBackend

    b = make_backend("scripted", script=["Take 1. So 17 + 25 = 42."])
    assert isinstance(b, ScriptedBackend)
    (c,) = await b.generate(prompt(b), Sampling(max_tokens=200))
    assert c.text.startswith("Take 1.")
    h = make_backend("openai", endpoints=["http://127.0.0.1:9/v1"], retokenize_missing_ids=True)
    assert isinstance(h, OpenAIBackend) and h.config.retokenize_missing_ids
    with pytest.raises(ValidationError, match="max_model_len"):
        make_backend("vllm", max_model_len=1)  # validated before any engine starts
    with pytest.raises(ValidationError, match="endpoint"):
        make_backend("openai", endpoint="http://x")
    with pytest.raises(ValueError, match="scripted backend.*no_such"):
        make_backend("scripted", script=["x"], no_such=1)
    with pytest.raises(ValueError, match="unknown backend 'nope': expected one of vllm, openai, scripted"):
        make_backend("nope")
