"""The value model: labels on scripted trajectories, the head fit, the folder round trip, the
metrics and the one-line errors without an engine; on the real engines the pooling runner's
hidden states, a tiny training run end to end, and the scorer's requests in the ledger against
the engines' own counters."""

from __future__ import annotations

import asyncio
import json

import pytest

from ponder.app.value.config import Fit, load_value_config
from ponder.app.value.fit import Rows, evaluate, fit, split
from ponder.app.value.labels import Trajectory, mc_labels, mc_share, outcome_labels, read_samples
from ponder.app.value.metrics import auc, brier, calibration
from ponder.backends.models import pull
from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.prompt import PromptConfig
from ponder.verifiers.value_model import HeadShape, ValueSpec, layout, load, new_head, probabilities, save

from ...engine_runs import vllm_counters

P = Problem(id="p", question="What is 3 + 4?", answer="7")


def test_outcome_labels_give_every_prefix_the_final_correctness():
    right = Trajectory("p", P.question, ("3 + 4 = 7", "So \\boxed{7}"), "7", True)
    wrong = Trajectory("p", P.question, ("3 + 4 = 8", "then", "So \\boxed{8}"), "8", False)
    assert outcome_labels(right) == [1.0, 1.0]
    assert outcome_labels(wrong) == [0.0, 0.0, 0.0]


async def test_mc_labels_are_the_share_of_completions_that_reach_the_answer():
    def script(call):
        if "3 + 4 = 7" in call.generated:  # after a right first step every completion is right
            return "So \\boxed{7}"
        return "So \\boxed{7}" if call.index == 0 else "So \\boxed{9}"  # one of four otherwise

    backend = ScriptedBackend(script)
    good = Trajectory("p", P.question, ("3 + 4 = 7", "double check", "So \\boxed{7}"), "7", True)
    bad = Trajectory("p", P.question, ("3 + 4 = 9", "double check", "So \\boxed{9}"), "9", False)
    assert await mc_labels(backend, PromptConfig(), P, good, 4, 0.7, 32, "\n\n", 0) == [1.0, 1.0, 1.0]
    assert await mc_labels(backend, PromptConfig(), P, bad, 4, 0.7, 32, "\n\n", 0) == [0.25, 0.25, 0.0]
    assert mc_share([True, False, False, False]) == 0.25
    with pytest.raises(ValueError, match="K >= 1"):
        mc_share([])


async def test_samples_are_read_from_a_best_of_n_run(tmp_path):
    from ponder.app.run.batch import execute
    from ponder.app.run.run_config import RunConfig

    problems = [P, Problem(id="q", question="What is 2 + 2?", answer="4")]
    run = RunConfig(
        name="r", output_dir=str(tmp_path), backend={"kind": "scripted", "options": {"script": ["One.\n\nSo \\boxed{7}", "\\boxed{4}"]}},
        strategy={"name": "best_of_n", "config": {"n": 2, "temperature": 0.5, "max_tokens": 40}}, dataset={"name": "unused"},
    )
    await execute(run, problems, progress=False)
    samples = await read_samples(tmp_path / "r", problems, "\n\n")
    assert [(t.problem_id, t.steps, t.correct) for t in samples] == [
        ("p", ("One.", "So \\boxed{7}"), True), ("p", ("\\boxed{4}",), False),
        ("q", ("One.", "So \\boxed{7}"), False), ("q", ("\\boxed{4}",), True),
    ]


def planted(n: int = 600, hidden: int = 16, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, hidden, generator=g) * 3 + 5  # off-centre, unscaled: the head standardises
    w = torch.zeros(hidden)
    w[3], w[7] = 2.0, -1.5
    y = (torch.sigmoid((x - 5) @ w / 3) > torch.rand(n, generator=g)).float()
    groups = [f"g{i // 4}" for i in range(n)]
    rows = Rows(x, y.tolist(), groups, [i % 4 for i in range(n)], [i % 4 == 3 for i in range(n)], [bool(v) for v in y])
    return rows, w


def test_the_fit_recovers_a_planted_linear_signal():
    rows, w = planted()
    held = split(rows.groups, 0.25, 0)
    train = [g not in held for g in rows.groups]
    head = fit(rows, train, HeadShape(kind="linear"), Fit(l2=0.1))
    learned = (head.net[0].weight[0] / head.scale).detach()
    cosine = float(learned @ w / (learned.norm() * w.norm()))
    assert cosine > 0.95
    report = evaluate(head, rows, [not t for t in train])
    assert report["auc_steps"] > 0.8
    assert set(report["auc_by_depth"]) == {0, 1, 2, 3}
    # deterministic by seed
    again = fit(rows, train, HeadShape(kind="linear"), Fit(l2=0.1))
    assert probabilities(again, rows.states[:20]) == probabilities(head, rows.states[:20])


def test_the_fit_does_not_depend_on_the_callers_thread_count():
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 96, generator=g)  # large enough for torch to split its sums over threads
    y = (torch.sigmoid(2 * x[:, 0] + x[:, 1:4].sum(1)) > torch.rand(1000, generator=g)).float()
    rows = Rows(x, y.tolist(), [str(i // 8) for i in range(1000)], [0] * 1000, [True] * 1000, [bool(v) for v in y])
    before = torch.get_num_threads()
    heads = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            heads.append(fit(rows, [True] * 1000, HeadShape(kind="mlp", width=64), Fit(l2=10.0, max_iter=10)))
            assert torch.get_num_threads() == threads  # the caller's setting is given back
    finally:
        torch.set_num_threads(before)
    assert probabilities(heads[0], x[:300]) == probabilities(heads[1], x[:300])


def test_validation_reports_the_auc_of_each_aggregate_of_a_samples_step_values():
    import torch

    head = new_head(1, HeadShape(kind="linear"))
    with torch.no_grad():
        head.net[0].weight.fill_(1.0)
        head.net[0].bias.zero_()
    # sample A (right) has step values 2 then -1, sample B (wrong) 0 then 0: A wins on its mean
    # and loses on its last and its lowest step
    states = torch.tensor([[2.0], [-1.0], [0.0], [0.0]])
    rows = Rows(states, [1, 1, 0, 0], ["a", "a", "b", "b"], [0, 1, 0, 1], [False, True, False, True], [True, True, False, False])
    report = evaluate(head.eval(), rows, [True] * 4)
    assert report["auc_by_aggregate"] == {"last": 0.0, "mean": 1.0, "min": 0.0}
    assert report["auc_final"] == report["auc_by_aggregate"]["last"]


def test_problems_that_repeat_a_question_stay_on_one_side_of_the_validation_split():
    import torch

    from ponder.app.value.train import rows_of

    # two-term sums repeat: problems p1 and p2 ask the same question under different ids
    asked = {"p1": "What is 3 + 4?", "p2": "What is 3 + 4?", "p3": "What is 5 + 1?", "p4": "What is 2 + 2?"}
    samples = [Trajectory(pid, q, ("a", "b"), "7", k == 0) for pid, q in asked.items() for k in range(2)]
    rows = rows_of(samples, [[1.0, 1.0]] * len(samples), [torch.zeros(2, 3)] * len(samples))
    problem_of_row = [t.problem_id for t in samples for _ in t.steps]
    for seed in range(20):
        held = split(rows.groups, 0.5, seed)
        side = {p: {g in held for g, q in zip(rows.groups, problem_of_row) if q == p} for p in asked}
        assert side["p1"] == side["p2"] and len(side["p1"]) == 1, seed


def test_cached_states_serve_any_subset_and_compute_only_new_samples(tmp_path):
    import torch

    from ponder.app.value.features import cached

    asked: list[list[int]] = []

    def compute(missing: list[int]) -> list:
        asked.append(missing)
        return [torch.full((1, 2), float(i)) for i in missing]

    path = tmp_path / "features.pt"
    first = cached(path, compute, [("p", 0), ("p", 1)])
    assert asked == [[0, 1]] and [float(s[0, 0]) for s in first] == [0.0, 1.0]
    assert [float(s[0, 0]) for s in cached(path, compute, [("p", 1)])] == [1.0]
    assert asked == [[0, 1]]  # a smaller set: nothing computed
    grown = cached(path, compute, [("p", 1), ("q", 0), ("p", 0)])
    assert asked == [[0, 1], [1]]  # a larger set: only the new sample, at its position
    assert [float(s[0, 0]) for s in grown] == [1.0, 1.0, 0.0]
    assert sorted(map(tuple, torch.load(path)["key"])) == [("p", 0), ("p", 1), ("q", 0)]


def test_the_mlp_head_fits_too():
    rows, _ = planted()
    train = [True] * len(rows.groups)
    # 50 L-BFGS iterations fit these rows as the default 200 do (AUC 0.97 either way), in a
    # twentieth of the time
    head = fit(rows, train, HeadShape(kind="mlp", width=8), Fit(l2=0.1, max_iter=50))
    assert evaluate(head, rows, train)["auc_steps"] > 0.8


def test_a_saved_folder_gives_the_scores_of_training(tmp_path):
    import torch

    rows, _ = planted(hidden=576)
    head = fit(rows, [True] * len(rows.groups), HeadShape(kind="mlp", width=8), Fit(max_iter=20))
    spec = ValueSpec(backbone="smollm2-135m-instruct", hidden_size=576, head=HeadShape(kind="mlp", width=8), system="Be brief.")
    save(tmp_path / "v", spec, head)
    spec2, head2 = load(str(tmp_path / "v"))
    assert spec2 == spec
    assert probabilities(head2, rows.states[:50]) == probabilities(head, rows.states[:50])
    assert torch.equal(head2.shift, head.shift)


def test_a_head_that_does_not_fit_the_backbone_names_both_sizes(tmp_path):
    head = new_head(8, HeadShape())
    save(tmp_path / "v", ValueSpec(backbone="smollm2-135m-instruct", hidden_size=8), head)
    with pytest.raises(ValueError, match="hidden states of size 8, but backbone 'smollm2-135m-instruct' has hidden size 576"):
        load(str(tmp_path / "v"))
    with pytest.raises(ValueError, match="no value.json there"):
        load(str(tmp_path))


def test_the_shipped_value_model_loads_by_name():
    spec, head = load("smollm2-135m-instruct-value")
    assert spec.backbone == "smollm2-135m-instruct" and spec.hidden_size == 576


def test_layout_puts_every_prefix_end_on_the_whole_trajectory():
    from ponder.backends.scripted import CharTokenizer

    spec = ValueSpec(backbone="b", hidden_size=4, system="S", template="Q: {question}")
    ids, ends = layout(CharTokenizer(), spec, "1+1?", [" a ", "bc"])
    text = CharTokenizer().decode(ids)
    assert text.endswith("<|assistant|>a\n\nbc")
    assert [text[: e + 1][-2:] for e in ends] == [">a", "bc"]
    prefix_ids, prefix_ends = layout(CharTokenizer(), spec, "1+1?", [" a "])
    assert ids[: len(prefix_ids)] == prefix_ids and prefix_ends == ends[:1]


def test_auc_brier_and_calibration():
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert auc([0.5, 0.5], [0, 1]) == 0.5  # a tie counts one half
    with pytest.raises(ValueError, match="right and wrong"):
        auc([0.1, 0.2], [1, 1])
    assert brier([1.0, 0.0], [1, 1]) == 0.5
    assert calibration([0.05, 0.15, 0.12, 1.0], [0, 1, 0, 1], bins=10) == [
        {"predicted": 0.05, "observed": 0.0, "count": 1}, {"predicted": pytest.approx(0.135), "observed": 0.5, "count": 2},
        {"predicted": 1.0, "observed": 1.0, "count": 1},
    ]


def test_config_errors_name_the_key(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text("output: out\ndataset: {name: gsm8k}\nlabels: {mc: 0}\n")
    with pytest.raises(ValueError, match=r"v.yaml: labels: expected outcome or \{mc: K\} with K >= 1"):
        load_value_config(path)
    path.write_text("output: out\ndataset: {name: gsm8k}\nhead: {kind: forest}\n")
    with pytest.raises(ValueError, match=r"v.yaml: head.kind"):
        load_value_config(path)
    path.write_text("output: out\ndataset: {name: gsm8k}\npolicy: {kind: openai, endpoints: [http://x]}\n")
    with pytest.raises(ValueError, match="policy: expected kind: vllm"):
        load_value_config(path)
    path.write_text("output: out\ndataset: {name: gsm8k}\nepochs: 3\n")
    with pytest.raises(ValueError, match="epochs: unknown key"):
        load_value_config(path)


def test_a_dataset_without_answers_is_refused_in_one_line(tmp_path):
    from ponder.app.value.train import check_problems

    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"id": "a", "question": "Why?"}) + "\n")
    path = tmp_path / "v.yaml"
    path.write_text(f"output: out\ndataset: {{name: {data}}}\n")
    with pytest.raises(ValueError, match="problem a has no answer"):
        check_problems(load_value_config(path))


def test_the_value_scorer_is_registered_without_importing_torch():
    import subprocess
    import sys

    code = "import sys; from ponder.verifiers import SCORERS; assert 'value' in SCORERS; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


TINY = {
    "name": "tiny", "dataset": {"name": "gym:chain_sum?size=4&seed=1000&min_terms=2&max_terms=2&min_digits=1&max_digits=2"},
    "prompt": {"system": "You are a helpful math assistant."},
    "rollouts": {"n": 4, "temperature": 0.7, "max_tokens": 64, "concurrency": 4},
    "fit": {"validation": 0.5, "max_iter": 30}, "features": {"batch": 8},
}


@pytest.mark.engine
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


@pytest.mark.engine
async def test_a_tiny_training_run_writes_a_folder_the_scorer_loads(engine, value_states, tmp_path):
    import torch

    from ponder.app.data.datasets import load as load_problems
    from ponder.app.value.config import ValueTrainConfig
    from ponder.app.value.labels import read_samples
    from ponder.app.value.train import train
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

    from ...servers import served

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
