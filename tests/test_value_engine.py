"""The value model on the real engines: the pooling runner's hidden states, a tiny training
run end to end, the scorer on the folder it writes, and its requests in the ledger against
the engines' own counters. One policy engine and one pooling engine serve every test."""

from __future__ import annotations

import asyncio
import json

import pytest

from ponder.backends.models import pull
from ponder.records.problem import Problem

from .test_ledger import vllm_counters

TINY = {
    "name": "tiny", "dataset": {"name": "gym:chain_sum?size=4&seed=1000&min_terms=2&max_terms=2&min_digits=1&max_digits=2"},
    "prompt": {"system": "You are a helpful math assistant."},
    "rollouts": {"n": 4, "temperature": 0.7, "max_tokens": 64, "concurrency": 4},
    "fit": {"validation": 0.5, "max_iter": 30}, "features": {"batch": 8},
}


def test_token_states_are_the_last_hidden_state_of_the_causal_model(value_states):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = pull("smollm2-135m-instruct")
    ids = AutoTokenizer.from_pretrained(folder).encode("State the final answer: 6 + 5 = 11.\n\nSo 11.")
    (rows,) = value_states.read([ids])
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    with torch.no_grad():
        expected = model(torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0]
    assert rows.shape == expected.shape
    assert torch.allclose(rows.float(), expected, atol=2e-3, rtol=1e-3)


async def test_a_tiny_training_run_writes_a_folder_the_scorer_loads(engine, value_states, tmp_path):
    import torch

    from ponder.app.data.datasets import load as load_problems
    from ponder.app.value.config import ValueTrainConfig
    from ponder.app.value.train import train
    from ponder.app.value.labels import read_samples
    from ponder.runtime.solver import Solver
    from ponder.strategies.base import make_strategy
    from ponder.verifiers.base import metering
    from ponder.verifiers.value import ValueScorer
    from ponder.verifiers.value_model import load, probabilities

    cfg = ValueTrainConfig(output=str(tmp_path / "value"), work_dir=str(tmp_path / "work"), **TINY)
    facts = await train(cfg, progress=False, say=lambda _: None, backend=engine, states=value_states)
    folder = tmp_path / "value"
    assert {p.name for p in folder.iterdir()} >= {"value.json", "head.safetensors", "card.md", "metrics.json", "train_questions.jsonl", "calibration.png"}
    assert facts["samples"] == 16 and facts["problems"] == 4 and 0 < facts["right"] < 16
    # validated on held-out problems, then the head that ships is fitted on every sample
    assert facts["validation"]["samples"] == 8 and facts["training"]["samples"] == 16
    assert len((folder / "train_questions.jsonl").read_text().splitlines()) == facts["questions"]
    assert json.loads((folder / "metrics.json").read_text())["labels"] == "outcome"

    # the folder scores a training sample as the head scored its cached states in training
    samples = await read_samples(tmp_path / "work" / "rollouts", load_problems(cfg.dataset), "\n\n")
    cache = torch.load(tmp_path / "work" / "features.pt")
    assert cache["key"][0] == [samples[0].problem_id, 0]
    _, head = load(str(folder))
    trained = probabilities(head, cache["states"][0])
    scorer = ValueScorer(model=str(folder), states=value_states)
    sample = samples[0]
    before = (value_states.served_requests, value_states.served_tokens)
    with metering() as meter:
        scored = await scorer.score(Problem(id="x", question=sample.question), sample.steps)
    assert scored == pytest.approx(trained, abs=1e-4)
    assert len(scored) == len(sample.steps)
    # one engine request for every prefix, as the pooling engine reported it
    assert (meter.requests, meter.usage.prompt_tokens) == (1, value_states.served_tokens - before[1])
    assert value_states.served_requests - before[0] == 1

    # in a search: each verifier call is one pooling request in the ledger, and the ledger adds
    # up to both engines' counters
    solver = Solver(engine, make_strategy("best_of_n", n=4, temperature=0.7, max_tokens=48, selection="weighted"), scorer, seed=1)
    await asyncio.sleep(1.0)  # the policy engine's counters are updated from its output loop
    before, pooled = vllm_counters(), (value_states.served_requests, value_states.served_tokens)
    result = await solver.solve(Problem(id="s", question=sample.question, answer="0"))
    await asyncio.sleep(2.0)
    after = vllm_counters()
    led = result.ledger
    assert led.verifier_calls == 4 == led.verifier_requests
    assert (led.requests, led.prompt_tokens) == (after[0] - before[0], after[1] - before[1])  # the policy engine's Prometheus counters
    assert (led.verifier_requests, led.verifier_tokens) == (value_states.served_requests - pooled[0], value_states.served_tokens - pooled[1])


@pytest.mark.engine
def test_a_policy_the_pooling_runner_cannot_load_is_one_line(tmp_path):
    from ponder.verifiers.hidden_states import HiddenStates

    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["NoSuchModelForCausalLM"], "model_type": "no_such_model"}))
    with pytest.raises(ValueError, match="the pooling runner cannot load"):
        HiddenStates(str(folder))


@pytest.mark.engine
async def test_the_scorer_reads_a_pooling_server_as_it_reads_its_own_engine(value_states, tmp_path):
    import os
    import sys

    import torch

    from ponder.verifiers.base import metering
    from ponder.verifiers.value import ValueScorer
    from ponder.verifiers.value_model import HeadShape, ValueSpec, new_head, save

    from .servers import served

    torch.manual_seed(0)
    head = new_head(576, HeadShape(kind="mlp", width=4))
    save(tmp_path / "v", ValueSpec(backbone="smollm2-135m-instruct", hidden_size=576, head=HeadShape(kind="mlp", width=4)), head)
    problem = Problem(id="h", question="What is 6 + 5?")
    steps = ["6 + 5 = 11.", "So the answer is \\boxed{11}."]
    local = await ValueScorer(model=str(tmp_path / "v"), states=value_states).score(problem, steps)
    model = str(pull("smollm2-135m-instruct"))
    command = lambda port: [  # noqa: E731
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--runner", "pooling", "--convert", "embed",
        "--pooler-config", '{"task": "token_embed"}',
        "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--max-model-len", "512", "--enforce-eager",
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    with served(command, tmp_path / "pool.log", env) as (url, _):
        remote = ValueScorer(model=str(tmp_path / "v"), endpoint=url)
        with metering() as meter:
            scores = await remote.score(problem, steps)
    assert scores == pytest.approx(local, abs=1e-4)
    assert meter.requests == 1 and meter.usage.prompt_tokens > 0
