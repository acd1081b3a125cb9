"""`ponder sweep`: sweep files, cells, the CSV and plot, a killed sweep resumed, intervals and the
subsampled estimators against brute force on the scripted backend; on the real engine, cells,
FLOPs from the embedded model's parameter count, the fitted table and compute_optimal on the
held-out problems."""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import os
import signal
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import pytest

from ponder.app.run.shard import Shard
from ponder.app.run.stats import bootstrap_mean
from ponder.app.sweep.difficulty import is_fit
from ponder.app.sweep.flops import parameters
from ponder.app.sweep.job import analyse, plan_runs, run_sweep
from ponder.app.sweep.outcomes import Outcome
from ponder.app.sweep.plan import Cell, load_sweep
from ponder.app.sweep.subsample import Votes, majority_at_k, subsample_record
from ponder.app.sweep.summary import make_row
from ponder.records.result import Candidate
from ponder.strategies.best_of_n import pass_at_k
from ponder.verifiers.answer import equivalent
from ponder.verifiers.voting import clusters

from ...commands import PONDER
from .sweep_script import write_problems

HERE = Path(__file__).parent
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(HERE)}  # where `sweep_script:answer` is found


BASE = """\
name: base
backend: {{kind: scripted, options: {{script: "sweep_script:answer", token_delay_s: {delay}}}}}
strategy: {{name: best_of_n, config: {{n: 1, temperature: 0.0, selection: first, max_tokens: 64}}}}
dataset: {{name: "{data}"}}
concurrency: 1
output_dir: {out}
"""


def write_sweep(tmp: Path, body: str, delay: float = 0.0, problems: int = 10) -> Path:
    data = write_problems(tmp / "problems.jsonl", problems)
    (tmp / "base.yaml").write_text(BASE.format(delay=delay, data=data, out=tmp / "runs"))
    path = tmp / "sweep.yaml"
    path.write_text(body)
    return path


def sweep(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PONDER, "sweep", *args], capture_output=True, text=True, timeout=timeout, env=ENV)


GRID = """\
name: grid
base: base.yaml
subsample: false
grid:
  strategy.config.temperature: [0.4, 0.8]
  strategy.config.n: [2, 4]
"""


CELLS = ["temperature0.4-n2", "temperature0.4-n4", "temperature0.8-n2", "temperature0.8-n4"]


def test_a_2x2_sweep_killed_mid_way_resumes_to_every_cell_csv_and_plot(tmp_path):
    path = write_sweep(tmp_path, GRID, delay=0.003, problems=6)
    root = tmp_path / "runs" / "grid"
    third = root / CELLS[2] / "results.jsonl"
    proc = subprocess.Popen([PONDER, "sweep", str(path), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    end = time.time() + 60
    while not (third.exists() and len(third.read_text().splitlines()) >= 2):
        assert proc.poll() is None and time.time() < end, proc.stderr.read() if proc.poll() is not None else "too slow"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    before = {c: (root / c / "results.jsonl").read_text() for c in CELLS[:3]}
    assert all(len(before[c].splitlines()) == 6 for c in CELLS[:2]) and 2 <= len(before[CELLS[2]].splitlines()) < 6
    assert not (root / CELLS[3]).exists() and not (root / "summary.csv").exists()

    again = sweep(str(path), "-q")  # a sweep with results is never mixed into silently
    assert again.returncode == 2 and "--resume" in again.stderr

    done = sweep(str(path), "--resume", "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    for cell in CELLS:
        lines = (root / cell / "results.jsonl").read_text()
        assert len(lines.splitlines()) == 6
        if cell in before:
            assert lines.startswith(before[cell])  # kept, nothing redone
        assert json.loads((root / cell / "summary.json").read_text())["problems"] == 6
    rows = list(csv.DictReader((root / "summary.csv").open()))
    assert [r["cell"] for r in rows] == CELLS
    for r in rows:
        assert r["source"] == "run" and float(r["acc_lo"]) <= float(r["accuracy"]) <= float(r["acc_hi"])
        assert float(r["gen_tokens_per_problem"]) > 0 and float(r["engine_requests"]) == 6 * int(r["cell"][-1])
    assert rows[1]["vs"] == CELLS[0] and rows[0]["diff"] == ""
    assert (root / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = done.stdout.splitlines()
    assert table[0].split()[:3] == ["cell", "how", "n"] and [t.split()[:2] for t in table[2:6]] == [[c, "run"] for c in CELLS]


def test_a_bad_axis_key_fails_in_one_line_before_any_engine_starts(tmp_path):
    path = write_sweep(tmp_path, "name: bad\nbase: base.yaml\ngrid: {strategy.config.nn: [1, 2]}\n")
    # a real engine would start for this base: the error must come first
    (tmp_path / "base.yaml").write_text((tmp_path / "base.yaml").read_text().replace("kind: scripted, options: {script: \"sweep_script:answer\", token_delay_s: 0.0}", "kind: vllm"))
    p = sweep(str(path))
    assert p.returncode == 2
    (line,) = p.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: cell nn1: strategy: ") and "field 'nn'" in line
    assert not (tmp_path / "runs").exists()
    path.write_text("name: bad\nbase: base.yaml\nvariants: [{name: x, set: {strategy.bogus: 1}}]\n")
    (line,) = sweep(str(path), "--dry-run").stderr.strip().splitlines()
    assert line == f"error: {path}: cell x: strategy.bogus: unknown key"


def test_best_of_n_cells_at_smaller_n_are_subsampled_from_the_largest(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    path = write_sweep(tmp_path, "name: s\nbase: base.yaml\nvariants:\n  - name: greedy\n  - name: bon\n"
                                 "    set: {strategy.config.selection: majority, strategy.config.temperature: 0.8}\n"
                                 "    grid: {strategy.config.n: [1, 2, 4, 8]}\n")
    plan = load_sweep(path)
    assert [(c.name, c.derived_from) for c in plan.cells] == [
        ("greedy", None), ("bon-n1", "bon-n8"), ("bon-n2", "bon-n8"), ("bon-n4", "bon-n8"), ("bon-n8", None)]
    table = in_process(plan).text().splitlines()
    assert [line.split()[1] for line in table[2:7]] == ["run", "sub", "sub", "sub", "run"]
    root = tmp_path / "runs" / "s"
    assert sorted(d.name for d in root.iterdir() if d.is_dir()) == ["bon-n8", "greedy"]  # two runs, no more
    rows = {r["cell"]: r for r in csv.DictReader((root / "summary.csv").open())}
    records = [json.loads(x) for x in (root / "bon-n8" / "results.jsonl").read_text().splitlines()]
    for k in (1, 2, 4):
        expect = [majority_at_k(Votes.of(r["candidates"], r["reference"]), k) for r in records]
        assert float(rows[f"bon-n{k}"]["accuracy"]) == round(sum(expect) / len(expect), 4)
        assert float(rows[f"bon-n{k}"]["engine_requests"]) == 10 * k
        assert rows[f"bon-n{k}"]["source"] == "subsampled from bon-n8"
    # with all 8 samples the estimate is the vote itself (no tie among this script's answers here)
    assert float(rows["bon-n8"]["accuracy"]) == round(sum(r["correct"] for r in records) / 10, 4)


def _brute_majority(answers: list[str | None], reference: str, k: int, keep: int = 0) -> Fraction:
    """The first `keep` answers and every k-subset of the others, voted by the real clustering;
    a tie between t groups counts 1/t."""
    total, count = Fraction(0), 0
    for drawn in itertools.combinations(answers[keep:], k):
        subset = (*answers[:keep], *drawn)
        count += 1
        groups = clusters([Candidate(text=a or "", answer=a or "") for a in subset])
        if not groups:
            continue
        top = max(len(g) for g in groups)
        tied = [g for g in groups if len(g) == top]
        total += Fraction(sum(equivalent(subset[g[0]] or "", reference) for g in tied), len(tied))
    return total / count


@pytest.mark.parametrize("answers", [
    ["7", "8", "7", None, "9", "8", "7.0", "8", None],  # "7.0" votes with "7"; ties at most k
    ["1", "2", "3", "4", "5", "6"],  # all distinct: every vote is a tie
])
def test_subsampled_majority_and_pass_at_k_equal_brute_force_over_all_subsets(answers):
    votes = Votes.of(answers, "7")
    for k in range(1, len(answers) + 1):
        assert majority_at_k(votes, k) == pytest.approx(float(_brute_majority(answers, "7", k)), abs=1e-12)
        some_right = [any(a is not None and equivalent(a, "7") for a in s) for s in itertools.combinations(answers, k)]
        assert pass_at_k(votes.n, votes.correct, k) == pytest.approx(sum(some_right) / len(some_right), abs=1e-12)
    # a first wave kept in hand (compute_optimal's fit): the wave and k more of the rest
    for keep in (1, 3):
        held = Votes.of(answers, "7", keep=keep)
        for k in range(0, len(answers) - keep + 1):
            assert majority_at_k(held, k) == pytest.approx(float(_brute_majority(answers, "7", k, keep)), abs=1e-12)


def test_a_cells_interval_is_the_bootstrap_of_its_problems_against_a_known_case(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    # 200 problems, half right: the 95% interval is 0.5 +- 1.96 * sqrt(0.25 / 200) = +-0.069
    base = {"tokens": {"generated": 10, "prompt": 20, "cached": 0, "aborted": 0}, "requests": 1, "verifier_calls": 0,
            "wall_s": 0.1, "metrics": {}, "candidates": ["1"], "error": None, "reference": "1"}
    records = tuple({**base, "id": f"p{i}", "correct": i % 2 == 0} for i in range(200))
    path = write_sweep(tmp_path, "name: k\nbase: base.yaml\n")
    cell = load_sweep(path).cells[0]
    row = make_row(Outcome(cell, records, "run"), None)
    assert row.accuracy == 0.5 and row.acc_hi - row.acc_lo == pytest.approx(2 * 0.0693, abs=0.012)
    iv = bootstrap_mean([float(r["correct"]) for r in records])
    assert (row.acc_lo, row.acc_hi) == (round(iv.lo, 4), round(iv.hi, 4))
    # a derived cell whose every problem has the same expected accuracy has no spread
    same = tuple(subsample_record({**base, "id": f"q{i}", "candidates": ["1", "2"]}, 1, Votes.of(["1", "2"], "1")) for i in range(30))
    derived = make_row(Outcome(Cell("d", cell.config, ()), same, "subsampled"), None)
    assert (derived.accuracy, derived.acc_lo, derived.acc_hi) == (0.5, 0.5, 0.5)
    assert derived.gen_tokens_per_problem == 5.0 and derived.engine_requests == 15


def test_sharded_sweeps_write_each_cells_shard_and_the_summary_joins_them(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    plan = load_sweep(write_sweep(tmp_path, "name: sh\nbase: base.yaml\ngrid: {strategy.config.max_tokens: [32, 64]}\n"))
    in_process(plan, shard=Shard(0, 2))
    root = tmp_path / "runs" / "sh"
    rows = {r["cell"]: r for r in csv.DictReader((root / "summary.csv").open())}
    half = int(rows["max_tokens32"]["problems"])
    assert 0 < half < 10 and rows["max_tokens32"]["source"] == "shards 1/2"
    in_process(plan, shard=Shard(1, 2))
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [f"max_tokens{t}-shard-{i}-of-2" for t in (32, 64) for i in (0, 1)]
    rows = {r["cell"]: r for r in csv.DictReader((root / "summary.csv").open())}
    assert [(r["problems"], r["source"]) for r in rows.values()] == [("10", "shards 2/2")] * 2


def in_process(plan, shard=None):
    """`ponder sweep` without the subprocess: the job's own functions."""
    asyncio.run(run_sweep(plan, plan_runs(plan, False, None, shard), resume=False, progress=False, terminal=None, shard=shard))
    return analyse(plan)


def test_set_in_the_file_and_on_the_command_line_change_the_base_of_every_cell(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    path = write_sweep(tmp_path, "name: b\nbase: base.yaml\nset: {concurrency: 3, strategy.config.max_tokens: 40}\n"
                                 "grid: {strategy.config.temperature: [0.0, 0.5]}\n")
    plan = load_sweep(path, ["strategy.config.max_tokens=32"])
    assert [(c.name, c.config.concurrency, c.config.strategy.config["max_tokens"]) for c in plan.cells] == [
        ("temperature0.0", 3, 32), ("temperature0.5", 3, 32)]
    assert {c.config.output_dir for c in plan.cells} == {str(tmp_path / "runs" / "b")}
    with pytest.raises(ValueError, match=r"sweep.yaml: cell temperature0.0: strategy: .*field 'max_tokens'"):
        load_sweep(path, ["strategy.config.max_tokens=0"])


def test_each_sweep_process_logs_to_a_file_of_its_own_until_its_first_cell_takes_the_log(tmp_path):
    # two sweeps at once (or a sweep beside a test) once shared $PONDER_HOME/logs/sweep.log: the
    # one that reached its first cell moved that file away and the other stopped, unable to find it
    home = tmp_path / "home"
    (home / "logs" / "sweep.log").mkdir(parents=True)  # the shared name, held by someone else
    path = write_sweep(tmp_path, "name: own\nbase: base.yaml\n", problems=2)
    p = subprocess.run([PONDER, "sweep", str(path), "-q"], capture_output=True, text=True, timeout=60, env={**ENV, "PONDER_HOME": str(home)})
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "runs" / "own" / "base" / "engine.log").is_file()
    assert [f.name for f in (home / "logs").iterdir()] == ["sweep.log"]  # its own log moved into the cell


ENGINE_BASE = """\
name: base
backend: {{kind: vllm, model: smollm2-135m-instruct, engine: {{max_model_len: 2048, kv_cache_gib: 2}}}}
strategy: {{name: best_of_n, config: {{n: 1, temperature: 0.0, selection: first, max_tokens: 48}}}}
scorer: {{name: arithmetic}}
dataset: {{name: "gym:chain_sum?size=6&seed=11&min_terms=2&max_terms=2&min_digits=1&max_digits=2"}}
prompt: {{system: "You are a helpful math assistant."}}
concurrency: 6
output_dir: {out}
"""


ENGINE_SWEEP = """\
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


@pytest.mark.engine
async def test_a_sweep_on_the_engine_writes_cells_flops_and_a_measured_compute_optimal_run(engine, tmp_path):
    (tmp_path / "base.yaml").write_text(ENGINE_BASE.format(out=tmp_path / "runs"))
    (tmp_path / "sweep.yaml").write_text(ENGINE_SWEEP)
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
