"""Classifier PRMs through vLLM's pooling runner: in-process, and over HTTP from a real server.

The embedded model has no trained reward head, so the classifier's head is random: these tests
check the path (probabilities per step, one batch, in [0, 1], changing with the text), not the
quality of the scores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from ponder.backends.models import pull
from ponder.records.problem import Problem
from ponder.verifiers import make_scorer
from ponder.verifiers.pooling import PoolingPRM

from .test_openai_backend import free_port, wait_ready

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


async def test_pooling_prm_in_process():
    prm = make_scorer("pooling", model="smollm2-135m-instruct", max_model_len=512)
    try:
        await check(prm)
        assert await prm.score(P, []) == []
    finally:
        prm.close()


def test_pooling_prm_config_errors():
    with pytest.raises(ValueError, match="exactly one of model"):
        PoolingPRM()


async def test_pooling_prm_over_http(tmp_path):
    port = free_port()
    log = open(tmp_path / "pool.log", "w")
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(pull("smollm2-135m-instruct")),
        "--runner", "pooling", "--convert", "classify", "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--max-model-len", "512", "--enforce-eager", "--seed", "0",
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health", proc, 300, log)
        prm = make_scorer("pooling", endpoint=f"http://127.0.0.1:{port}/v1")
        await check(prm)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        log.close()
