"""The confidence scorer: the policy's own top-k logprobs steer the search, with no request and no
verifier call spent on scoring; on the scripted backend and on the real engine."""

from __future__ import annotations

import json
import math

import pytest

from ponder.backends.scripted import ASSISTANT, ScriptedBackend
from ponder.records.problem import Problem
from ponder.records.trace import Trace
from ponder.runtime.budget import Budget
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy
from ponder.verifiers.confidence import ConfidenceScorer, self_certainty, token_confidence

PROBLEM = Problem(id="conf", question="What is 3 + 4?", answer="7")
K = 4
SURE = "sure: 3 plus 4 is 7.\n\nso it is settled.\n\n\\boxed{7}"
HMM = "hmm: maybe 3 plus 4 is 9.\n\nso it is settled.\n\n\\boxed{9}"


def answer(call) -> str:
    """One sample in four starts confidently; a continuation keeps its branch."""
    if call.generated:
        return SURE if call.generated.startswith("sure") else HMM
    return SURE if (call.seed or 0) % 4 == 3 else HMM


def logprob(prefix, token) -> float:
    """After a confident start, one of the k consecutive ids the scripted backend lists per
    position (the sampled one and the k - 1 after it) takes nearly all the mass; before and
    elsewhere the top k are flat."""
    text = "".join(chr(i) for i in prefix)
    if text[text.rfind(ASSISTANT) + len(ASSISTANT):].startswith("sure"):
        return -0.01 if token % K == 0 else -12.0
    return -math.log(K)


def scripted() -> ScriptedBackend:
    return ScriptedBackend(answer, logprob=logprob)


STEP = dict(step_tokens=40, final_tokens=40, max_steps=3)


def test_statistics_are_zero_when_flat_and_differ_on_a_distribution_flat_over_many_tokens():
    flat, peaked, wide = [-math.log(K)] * K, [-0.01] + [-12.0] * (K - 1), [-10.0] * K
    assert token_confidence(flat, K) == pytest.approx(math.log(K)) and self_certainty(flat, K) == pytest.approx(0.0)
    assert token_confidence(peaked + [-30.0], K) == pytest.approx((0.01 + 36) / K)  # the sampled token beyond the top k is dropped
    # every one of the top k is unlikely: token confidence calls it confident, self-certainty does not
    assert token_confidence(wide, K) == pytest.approx(10.0) and self_certainty(wide, K) == pytest.approx(0.0)
    for kind in ("token_confidence", "self_certainty"):
        scorer = ConfidenceScorer(kind=kind, top_k=K)
        assert scorer._scale(scorer._statistic(flat, K)) == pytest.approx(0.0)
        assert 0.8 < scorer._scale(scorer._statistic(peaked, K)) < 1.0
    assert ConfidenceScorer(kind="token_confidence", top_k=K)._scale(10.0) == pytest.approx(1 - math.log(K) / 10)


def test_value_reads_every_node_of_the_path():
    """A confident first step and a flat second: the trajectory's value is not its last node's."""
    trace = Trace([1, 2, 3])
    scorer = ConfidenceScorer(kind="token_confidence", top_k=K)
    peaked, flat = [-0.01] + [-12.0] * (K - 1), [-math.log(K)] * K
    first = trace.add(trace.root, [5, 6, 7], "a", "stop", trace.now())
    scorer.note(trace, first, [peaked] * 3)
    second = trace.add(first, [8], "b", "eos", trace.now())
    scorer.note(trace, second, [flat])
    c_peaked = token_confidence(peaked, K)
    assert scorer.value(trace, second, "last") == pytest.approx(scorer._scale((3 * c_peaked + math.log(K)) / 4))
    steps = ConfidenceScorer(kind="token_confidence", top_k=K, aggregate="steps")
    assert steps.value(trace, second, "last") == pytest.approx(0.0)
    assert steps.value(trace, second, "mean") == pytest.approx(scorer._scale(c_peaked) / 2)


def test_config_defaults_and_bad_options():
    cfg = ConfidenceScorer().config
    assert (cfg.kind, cfg.top_k, cfg.aggregate) == ("self_certainty", 20, "tokens")
    with pytest.raises(ValueError, match=r"^confidence scorer: option 'top_k': Input should be greater than or equal to 2$"):
        ConfidenceScorer(top_k=1)
    with pytest.raises(ValueError, match=r"^confidence scorer: option 'kind': Input should be 'self_certainty' or 'token_confidence'$"):
        ConfidenceScorer(kind="entropy")
    with pytest.raises(ValueError, match=r"^confidence scorer: option 'colour': Extra inputs are not permitted$"):
        ConfidenceScorer(colour="red")


@pytest.mark.parametrize("kind", ["self_certainty", "token_confidence"])
async def test_beam_search_keeps_the_confident_branch_with_no_request_or_verifier_call_for_scoring(kind):
    b = scripted()
    # a verifier budget of one call would stop a scorer that spent calls after the first step
    solver = Solver(b, make_strategy("beam_search", n=4, width=2, dedup=False, **STEP), ConfidenceScorer(kind=kind, top_k=K),
                    budget=Budget(verifier_calls=1))
    r = await solver.solve(PROBLEM)
    # the three flat first steps come first: keeping the first two (ties) would answer 9
    assert r.answer == "7" and r.text == SURE
    assert r.metrics["steps"] == 3
    assert r.ledger.verifier_calls == 0 and r.ledger.verifier_requests == 0
    assert r.ledger.requests == len(b.calls) == b.stats().requests == 4 + 2 * 2 + 2 * 2
    assert {c.sampling.logprobs for c in b.calls} == {K}
    chosen = r.trace.graph.nodes[next(c.node for c in r.candidates if c.text == SURE)]
    assert chosen["score"] > 0.8 and chosen["confidence_tokens"] > 0


async def test_without_the_scorer_no_logprobs_are_asked_for():
    b = scripted()
    await Solver(b, make_strategy("best_of_n", n=2, max_tokens=60)).solve(PROBLEM)
    assert {c.sampling.logprobs for c in b.calls} == {None}


async def test_best_of_n_weighted_by_confidence_outvotes_the_majority():
    majority = await Solver(scripted(), make_strategy("best_of_n", n=4, max_tokens=60)).solve(PROBLEM)
    assert majority.answer == "9"
    b = scripted()
    r = await Solver(b, make_strategy("best_of_n", n=4, max_tokens=60, selection="weighted"), ConfidenceScorer(top_k=K)).solve(PROBLEM)
    assert r.answer == "7" and r.ledger.requests == 4 and r.ledger.verifier_calls == 0
    scores = {c.answer: c.score for c in r.candidates}
    assert scores["9"] == pytest.approx(0.0) and scores["7"] > 0.8  # each scored from its whole completion


@pytest.mark.parametrize("name,config", [
    ("dvts", dict(n=4, width=2, **STEP)),
    ("early_rejection", dict(n=4, width=2, tau=8, **STEP)),
    ("a_star", dict(k=4, step_tokens=40, final_tokens=40, max_depth=3)),
    ("mcts", dict(k=4, step_tokens=40, final_tokens=40, max_depth=3, simulations=6, parallel=2, answer="value", prior="probability")),
    ("particle_filtering", dict(particles=4, weight_temperature=0.05, **STEP)),
])
async def test_other_step_searches_prefer_the_confident_branch(name, config):
    b = scripted()
    r = await Solver(b, make_strategy(name, **config), ConfidenceScorer(top_k=K)).solve(PROBLEM)
    assert r.answer == "7"
    assert r.ledger.verifier_calls == 0 and r.ledger.requests == len(b.calls)


async def test_steps_aggregate_combines_per_step_values_and_merges_a_partial_step():
    """`steps` gives one value per step; early rejection's τ-token node and its continuation
    are one step, scored over both nodes' tokens."""
    b = scripted()
    scorer = ConfidenceScorer(top_k=K, aggregate="steps")
    r = await Solver(b, make_strategy("early_rejection", n=4, width=2, tau=8, aggregate="min", **STEP), scorer).solve(PROBLEM)
    assert r.answer == "7"
    g = r.trace.graph
    node = r.trace.node(next(c.node for c in r.candidates if c.text == SURE))
    path = r.trace.path(node)
    steps = scorer._steps(r.trace, node)
    assert len(path) > len(steps) == len(r.trace.steps(node)) == 3
    # the first step's flat "sure" tokens are averaged with the rest of that step, not alone
    first = [n for n in path if n.depth <= 2][:2]
    assert g.nodes[first[0].id]["partial"] and not g.nodes[first[1].id].get("partial")
    tokens = g.nodes[first[0].id]["confidence_tokens"] + g.nodes[first[1].id]["confidence_tokens"]
    assert steps[0][1] == tokens


async def test_a_streamed_node_without_statistics_is_refused():
    from ponder.records.trace import StreamedChild

    b = scripted()
    solver = Solver(b, make_strategy("best_of_n", n=1), ConfidenceScorer(top_k=K))
    ctx = solver.context(PROBLEM)
    child = StreamedChild(ctx.tree, ctx.tree.root)
    async for d in ctx.stream(ctx.tree.root, ctx.sampling(max_tokens=20)):
        child.add(d)
    with pytest.raises(ValueError, match="no token statistics"):
        await ctx.score(child.node())


async def test_a_yaml_run_scores_with_confidence(tmp_path):
    from ponder.app.run.batch import execute
    from ponder.app.run.run_config import load_run_config

    config = tmp_path / "run.yaml"
    config.write_text(
        "name: conf\nbackend: {kind: scripted, options: {script: [\"3 + 4 = 7.\\n\\nSo the answer is \\\\boxed{7}.\"]}}\n"
        "strategy: {name: beam_search, config: {n: 4, width: 2, max_steps: 3}}\n"
        "scorer: {name: confidence, options: {kind: token_confidence, top_k: 5}}\n"
        f"dataset: {{name: \"{tmp_path / 'one.jsonl'}\"}}\noutput_dir: {tmp_path / 'runs'}\n")
    (tmp_path / "one.jsonl").write_text(json.dumps({"id": "a", "problem": "What is 3 + 4?", "answer": "7"}) + "\n")
    done = await execute(load_run_config(config), [PROBLEM], progress=False)
    (record,) = [json.loads(line) for line in (done.directory / "results.jsonl").read_text().splitlines()]
    assert record["answer"] == "7" and record["error"] is None
    assert record["verifier_calls"] == 0 and record["requests"] > 4
    trace = json.loads((done.directory / record["trace"]).read_text())
    steps = [n for n in trace["nodes"] if n["id"] != 0]
    assert any(n["depth"] == 2 for n in steps), "the search went past its first step"
    assert all(n["confidence_tokens"] == n["tokens"] > 0 and 0 < n["score"] < 1 for n in steps)


ENGINE_PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")


@pytest.mark.engine
@pytest.mark.parametrize("kind", ["self_certainty", "token_confidence"])
async def test_beam_search_scored_by_confidence_makes_only_its_sampling_requests(engine, kind):
    strategy = make_strategy("beam_search", n=4, width=2, step_tokens=32, final_tokens=64, max_steps=3, dedup=False)
    before = engine.stats().requests
    r = await Solver(engine, strategy, ConfidenceScorer(kind=kind), seed=1).solve(ENGINE_PROBLEM)
    g = r.trace.graph
    samples = [a for i, a in g.nodes(data=True) if i != 0]  # every sample the search asked for is a node
    assert any(a["depth"] >= 2 for a in samples), "the search went past its first step"
    assert r.ledger.requests == len(samples) == engine.stats().requests - before
    assert r.ledger.verifier_calls == 0 and r.ledger.verifier_requests == 0 and r.ledger.verifier_tokens == 0
    # the engine returned top-k logprobs for every generated token, and they score the beams
    assert all(a["confidence_tokens"] == a["tokens"] > 0 for a in samples)
    scores = [a["score"] for a in samples]
    assert all(0.0 < s < 1.0 for s in scores) and len(set(scores)) > 1
    assert r.candidates and all(c.score is not None for c in r.candidates)
