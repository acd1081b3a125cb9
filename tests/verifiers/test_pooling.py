"""Classifier PRMs through vLLM's pooling runner: in-process beside the policy engine, and over
HTTP from a real server.

The embedded model has no trained reward head, so the classifier's head is random: these tests
check the path (probabilities per step, one batch, in [0, 1], changing with the text), not the
quality of the scores."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from ponder.backends.base import Sampling
from ponder.backends.models import pull
from ponder.records.problem import Problem
from ponder.verifiers import make_scorer
from ponder.verifiers.pooling import PoolingPRM

from ..servers import served

P = Problem(id="pool", question="Tom has 3 apples and buys 4 more. How many apples?", answer="7")
GOOD = ["Tom starts with 3 apples.", "He buys 4 more: 3 + 4 = 7."]
BAD = ["Tom starts with 3 apples.", "He sells the farm and moves to Mars."]


async def check(prm):
    good, bad = await prm.score(P, GOOD), await prm.score(P, BAD)
    assert len(good) == 2 and len(bad) == 2
    assert all(0.0 <= x <= 1.0 for x in good + bad)
    vectors_good, vectors_bad = await prm.probabilities(P, GOOD), await prm.probabilities(P, BAD)
    assert all(sum(v) == pytest.approx(1.0, abs=1e-4) for v in vectors_good + vectors_bad)
    # the untrained head can put a class anywhere (1e-20, or 1.0 in float32): compare relatively,
    # and read "changes with the text" from all classes' probabilities
    assert vectors_good[0] == pytest.approx(vectors_bad[0], rel=1e-3, abs=1e-30)  # same prefix, same scores
    assert vectors_good[1] != vectors_bad[1]  # the scores change with the text


async def test_pooling_prm_in_process_beside_the_policy_engine(engine):
    """A second engine in the policy's process (a PRM on its own pooling engine): the two share
    no state, each counts its own requests, and the policy lives on after the PRM closes."""
    ids = engine.tokenizer.chat([{"role": "user", "content": "What is 2 + 2?"}])
    (before,) = await engine.generate(ids, Sampling(max_tokens=16))
    prm = make_scorer("pooling", model="smollm2-135m-instruct", max_model_len=512)
    try:
        requests = engine.stats().requests
        (during,), scores = await asyncio.gather(engine.generate(ids, Sampling(max_tokens=16)), prm.score(P, GOOD))
        assert during.token_ids == before.token_ids and len(scores) == 2
        assert engine.stats().requests == requests + 1  # the PRM's request went to its own engine
        await check(prm)
        assert await prm.score(P, []) == []
    finally:
        prm.close()
    (after,) = await engine.generate(ids, Sampling(max_tokens=16))
    assert after.token_ids == before.token_ids


def test_pooling_prm_config_errors():
    with pytest.raises(ValueError, match="exactly one of model"):
        PoolingPRM()


@pytest.mark.engine
async def test_pooling_prm_over_http(tmp_path):
    model = str(pull("smollm2-135m-instruct"))
    command = lambda port: [  # noqa: E731
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
        "--runner", "pooling", "--convert", "classify", "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--max-model-len", "512", "--enforce-eager", "--seed", "0",
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    with served(command, tmp_path / "pool.log", env) as (url, _):
        await check(make_scorer("pooling", endpoint=url))
