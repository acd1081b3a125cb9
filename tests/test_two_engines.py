"""Several engines in one process (a policy and a judge): no shared state between them."""

from __future__ import annotations

import asyncio

from ponder.backends.base import Sampling
from ponder.backends.vllm import EngineConfig, VllmBackend
from ponder.records.problem import Problem
from ponder.verifiers.judge import Judge


async def test_a_policy_and_a_judge_engine_side_by_side(engine):
    judge_engine = VllmBackend(EngineConfig(model="smollm2-135m-instruct", max_model_len=1024, kv_cache_gib=1, seed=7))
    try:
        ids = engine.tokenizer.chat([{"role": "user", "content": "What is 2 + 2?"}])
        before_policy, before_judge = engine.stats().requests, judge_engine.stats().requests
        (policy_out,), (judge_out,) = await asyncio.gather(
            engine.generate(ids, Sampling(max_tokens=16)), judge_engine.generate(ids, Sampling(max_tokens=16))
        )
        assert policy_out.token_ids == judge_out.token_ids  # same weights, greedy: same tokens, separate engines
        verdict = await Judge(judge_engine).verify(Problem(id="j", question="What is 2 + 2?"), policy_out.text)
        assert 0 < verdict.score < 1
        assert engine.stats().requests == before_policy + 1  # the judge's requests went to its own engine
        assert judge_engine.stats().requests == before_judge + 1 + 2
    finally:
        await judge_engine.close()
    (again,) = await engine.generate(ids, Sampling(max_tokens=16))  # the policy engine lives on
    assert again.token_ids == policy_out.token_ids
