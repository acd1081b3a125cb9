"""A sweep on the real engine (the session's): cells, subsampled cells, FLOPs from the embedded
model's parameter count, the fitted table and compute_optimal on the held-out problems."""

from __future__ import annotations

import csv
import json

import pytest

from ponder.app.sweep.difficulty import is_fit
from ponder.app.sweep.flops import parameters
from ponder.app.sweep.job import analyse, plan_runs, run_sweep
from ponder.app.sweep.plan import load_sweep

pytestmark = pytest.mark.engine

BASE = """\
name: base
backend: {{kind: vllm, model: smollm2-135m-instruct, engine: {{max_model_len: 2048, kv_cache_gib: 2}}}}
strategy: {{name: best_of_n, config: {{n: 1, temperature: 0.0, selection: first, max_tokens: 48}}}}
scorer: {{name: arithmetic}}
dataset: {{name: "gym:chain_sum?size=6&seed=11&min_terms=2&max_terms=2&min_digits=1&max_digits=2"}}
prompt: {{system: "You are a helpful math assistant."}}
concurrency: 6
output_dir: {out}
"""
SWEEP = """\
name: small
base: base.yaml
variants:
  - name: greedy
  - name: bon
    set: {strategy.config.temperature: 0.8, strategy.config.selection: majority}
    grid: {strategy.config.n: [1, 2, 4]}
  - name: beam
    set: {strategy: {name: beam_search, config: {n: 2, width: 2, max_steps: 2, step_tokens: 24, final_tokens: 32}}}
difficulty: {wave: 2, budgets: [400]}
"""


async def test_a_sweep_on_the_engine_writes_cells_flops_and_a_measured_compute_optimal_run(engine, tmp_path):
    (tmp_path / "base.yaml").write_text(BASE.format(out=tmp_path / "runs"))
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    plan = load_sweep(tmp_path / "sweep.yaml")
    runs = plan_runs(plan, False, None, None)
    assert [c.name for c, _ in runs] == ["greedy", "bon-n4", "beam"]
    await run_sweep(plan, runs, resume=False, progress=False, terminal=None, shard=None, backend=engine)
    report = analyse(plan)
    rows = {r["cell"]: r for r in csv.DictReader((plan.directory / "summary.csv").open())}
    assert list(rows)[:5] == ["greedy", "bon-n1", "bon-n2", "bon-n4", "beam"]
    params = parameters(plan.cells[0].config.backend)
    assert params == 134_515_008
    greedy = [json.loads(x) for x in (plan.directory / "greedy" / "results.jsonl").read_text().splitlines()]
    spent = sum(r["tokens"]["generated"] + r["tokens"]["prompt"] - r["tokens"]["cached"] for r in greedy)
    assert float(rows["greedy"]["flops_per_problem"]) == pytest.approx(2 * params * spent / 6, rel=1e-3)
    assert int(rows["beam"]["problems"]) == 6 and float(rows["beam"]["verifier_calls"]) > 0
    # the held-out problems, each solved by a first wave of 2 and the cell fitted for its level
    held = [json.loads(x) for x in (plan.directory / "compute_optimal-400" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in held) == sorted(r["id"] for r in greedy if not is_fit(r["id"]))
    assert all(r["requests"] >= 2 and r["metrics"]["wave_tokens"] <= r["tokens"]["generated"] for r in held)
    assert (plan.directory / "frontier.png").read_bytes()[:4] == b"\x89PNG" and (plan.directory / "bins.csv").is_file()
    assert [c.run for c in report.comparisons] == ["compute_optimal-400"]
    assert engine.unfinished_requests() == 0
