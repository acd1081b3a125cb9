"""Runs on Ray workers (`ponder run --ray`): the same run directory as a local run, id for id;
a worker killed mid-run and a driver killed mid-run lose and repeat nothing; bad clusters are
one line and exit 2. The tests marked `ray` share one local 2-CPU cluster (conftest
`ray_cluster`); each leaves no worker process of its own behind."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ponder.app.cluster.run_budget import RunBudget
from ponder.app.data.datasets import load
from ponder.app.run.batch import execute
from ponder.app.run.progress import Progress
from ponder.app.run.run_config import load_run_config, result_difference
from ponder.cli import app
from ponder.records.ledger_summary import LedgerSummary
from ponder.runtime.budget import Budget

from ...commands import PONDER, ponder
from ...servers import free_port
from ..runs import answer, files, records, row, steps

CONFIG = """\
name: {name}
backend: {{kind: scripted, options: {{script: "ponder.tests.app.runs:answer", token_delay_s: {delay}}}}}
strategy: {{name: best_of_n, config: {{n: 3, max_tokens: 48}}}}
dataset: {{name: "{data}"}}
concurrency: 4
output_dir: {out}
"""


def write_config(tmp: Path, name: str = "sums", delay: float = 0.0, n: int = 40, extra: str = "") -> Path:
    data = tmp / "sums.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i:02d}", "problem": f"What is {i} + {2 * i}?", "answer": str(3 * i)}) + "\n" for i in range(n)))
    path = tmp / f"{name}.yaml"
    path.write_text(CONFIG.format(name=name, delay=delay, data=data, out=tmp / "runs") + extra)
    return path


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def worker_processes() -> list[int]:
    """Processes of ponder's Ray workers on this machine (Ray titles an actor's process after its class)."""
    found = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "cmdline").read_bytes().startswith(b"ray::Worker"):
                found.append(int(d.name))
        except OSError:
            continue
    return found


@pytest.fixture
def no_workers_left():
    """Every worker process a test started is gone once it ends (Ray reaps a dead owner's actors)."""
    yield
    end = time.time() + 30
    while worker_processes() and time.time() < end:
        time.sleep(0.2)
    assert worker_processes() == []


# --- without a cluster -------------------------------------------------------------------------

@pytest.mark.parametrize("executor,message", [
    ("{kind: ray, address: 'not an address'}", "executor.address: expected auto, local, HOST:PORT or ray://HOST:PORT"),
    ("{kind: ray, workers: 0}", "executor.workers: Input should be greater than or equal to 1"),
    ("{address: auto}", "executor: address: only for kind: ray"),
    ("{kind: dask}", "executor.kind: Input should be 'local' or 'ray'"),
    ("{kind: ray, gpu: 1}", "executor.gpu: unknown key"),
])
def test_executor_section_is_checked_like_the_rest(tmp_path, executor, message):
    config = write_config(tmp_path, extra=f"executor: {executor}\n")
    with pytest.raises(ValueError) as e:
        load_run_config(config)
    assert str(e.value).startswith(f"{config}: {message}") and "\n" not in str(e.value)


def test_the_ray_flag_overrides_the_executor_section_and_is_checked_by_a_dry_run(tmp_path):
    config = write_config(tmp_path, extra="executor: {kind: ray, address: auto, workers: 2}\n")
    done = cli("run", str(config), "--dry-run", "--ray", "nowhere")
    assert done.exit_code == 2
    assert done.stderr == f"error: {config}: executor.address: expected auto, local, HOST:PORT or ray://HOST:PORT, got 'nowhere'\n"
    assert cli("run", str(config), "--dry-run", "--ray").exit_code == 0  # bare: the section's address
    assert cli("run", "--ray", str(config), "--dry-run").exit_code == 0  # before the config: bare too


def test_leases_share_the_run_budget_and_never_pass_it():
    budget = RunBudget(Budget(generated_tokens=100), slots=4)
    leases = [budget.grant() for _ in range(4)]
    assert [lease.tokens for lease in leases] == [25, 25, 25, 25] and budget.grant() is None  # all held
    budget.settle(leases[0], LedgerSummary(generated_tokens=10))  # 15 unspent come back
    assert budget.grant().tokens == 15
    budget.settle(leases[1], None)  # its worker died: all of its lease counts as spent
    assert budget.used_tokens == 35 and budget.grant() is None  # 35 used, 65 held
    budget.settle(leases[2], LedgerSummary(generated_tokens=5))
    assert [budget.grant().tokens, budget.grant().tokens] == [10, 10]  # 20 left, two slots free
    assert budget.grant() is None and budget.held_tokens + budget.used_tokens == 100
    unlimited = RunBudget(Budget(), slots=2)
    assert unlimited.grant().budget == Budget()


def test_the_progress_bar_counts_problems_sent_again():
    out = io.StringIO()
    with Progress(3, 0, enabled=True, stream=out) as bar:
        bar.retry()
        bar.retry()
        bar.update({"correct": True, "error": None}, LedgerSummary(generated_tokens=5, prompt_tokens=10, cached_tokens=5))
    assert out.getvalue().rstrip().endswith("| cache hit 50% | 2 retried") and bar.retries == 2


def test_help_strategies_and_a_local_run_never_import_ray(tmp_path):
    config = write_config(tmp_path, n=3)
    probe = textwrap.dedent(f"""
        import sys
        from typer.testing import CliRunner
        from ponder.cli import app
        for args in (["--help"], ["strategies"], ["run", {str(config)!r}, "-q", "-v"]):
            out = CliRunner().invoke(app, args)
            assert out.exit_code == 0, out.output
        print(sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")))
    """)
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]" and (tmp_path / "runs" / "sums" / "results.jsonl").is_file()


def test_an_address_that_does_not_answer_is_one_line_and_writes_nothing(tmp_path):
    config = write_config(tmp_path)
    address = f"127.0.0.1:{free_port()}"
    done = cli("run", str(config), "-q", "-v", "--ray", address)
    assert done.exit_code == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: --ray {address}: no Ray cluster answers there (") and done.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()


# --- on the session's local cluster ------------------------------------------------------------

@pytest.fixture
def ray_address(ray_cluster) -> str:
    return ray_cluster[0]


@pytest.mark.ray
def test_two_workers_write_the_run_a_local_run_writes_id_for_id(ray_address, tmp_path, no_workers_left):
    config, runs = write_config(tmp_path), tmp_path / "runs"
    assert cli("run", str(config), "-q", "-v").exit_code == 0
    done = cli("run", str(config), "-q", "-v", "--ray", ray_address, "--set", "executor.workers=2", "--set", "name=onray")
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"{runs / 'onray'}: 40 problems (0 from before), accuracy 0.800")
    local, remote = records(runs / "sums"), records(runs / "onray")
    assert len((runs / "onray" / "results.jsonl").read_text().splitlines()) == 40 and sorted(remote) == sorted(local)
    for pid, r in local.items():
        m = remote[pid]
        assert (m["answer"], m["correct"], m["candidates"], m["error"]) == (r["answer"], r["correct"], r["candidates"], r["error"]), pid
        # cached prompt tokens depend on which problems ran before on the same engine: not compared
        assert (m["tokens"]["generated"], m["tokens"]["prompt"], m["requests"], m["verifier_calls"]) == \
            (r["tokens"]["generated"], r["tokens"]["prompt"], r["requests"], r["verifier_calls"]), pid
        assert steps(runs / "onray" / m["trace"]) == steps(runs / "sums" / r["trace"]), pid
    s_local, s_ray = (json.loads((runs / d / "summary.json").read_text()) for d in ("sums", "onray"))
    for key in ("strategy", "problems", "errors", "accuracy", "coverage", "generated_per_problem", "verifier_calls"):
        assert s_ray[key] == s_local[key], key
    c_local, c_ray = (yaml.safe_load((runs / d / "config.yaml").read_text()) for d in ("sums", "onray"))
    assert c_ray["executor"]["kind"] == "ray" and result_difference(c_local, c_ray) is None  # one experiment

    # report, resume, merge and view read it as they read a local run
    report = cli("report", str(runs / "sums"), str(runs / "onray"), "--plot", str(tmp_path / "plot.png"))
    assert report.exit_code == 0, report.output
    rows = report.stdout.splitlines()[2:4]
    assert [row(x)[0] for x in rows] == ["sums", "onray"] and row(rows[0])[1] == row(rows[1])[1]
    before = files(runs / "onray")
    again = cli("run", str(config), "-q", "-v", "--ray", ray_address, "--resume", "--set", "name=onray")
    assert again.exit_code == 0 and again.stdout.startswith(f"{runs / 'onray'}: 40 problems (40 from before)")
    assert records(runs / "onray") == remote and (runs / "onray" / "results.jsonl").read_bytes() == before[str(runs / "onray" / "results.jsonl")]
    merged = cli("merge", str(runs / "onray"), "--output", str(tmp_path / "merged"))
    assert merged.exit_code == 0 and records(tmp_path / "merged") == remote
    viewed = cli("view", str(runs / "onray"), "--output", str(tmp_path / "view.html"))
    assert viewed.exit_code == 0, viewed.output
    assert "q39" in (tmp_path / "view.html").read_text()


@pytest.mark.ray
def test_a_run_through_ray_client_is_the_same_run(ray_cluster, tmp_path, no_workers_left):
    config, runs = write_config(tmp_path, n=8), tmp_path / "runs"
    assert cli("run", str(config), "-q", "-v").exit_code == 0
    done = cli("run", str(config), "-q", "-v", "--ray", ray_cluster[1], "--set", "name=client")
    assert done.exit_code == 0, done.output
    local, remote = records(runs / "sums"), records(runs / "client")
    assert sorted(remote) == sorted(local) == [f"q{i:02d}" for i in range(8)]
    assert all((remote[k]["answer"], remote[k]["candidates"]) == (local[k]["answer"], local[k]["candidates"]) for k in local)


@pytest.mark.ray
async def test_a_worker_killed_mid_run_loses_no_problem_and_repeats_none(ray_address, tmp_path, no_workers_left):
    from ponder.app.cluster.worker_pool import WorkerPool

    path = write_config(tmp_path, delay=0.003, extra=f"executor: {{kind: ray, address: '{ray_address}', workers: 2}}\n")
    cfg = load_run_config(path)
    pool = WorkerPool(cfg.executor, cfg.backend, cfg.seed, cfg.concurrency)
    await pool.start()
    try:
        while len(pool.pids) < 2:
            await asyncio.sleep(0.05)
        runner = pool.runner(cfg, path.parent)
        run = asyncio.create_task(execute(cfg, load(cfg.dataset), progress=False, runner=runner))
        results = tmp_path / "runs" / "sums" / "results.jsonl"
        while not results.exists() or len(results.read_text().splitlines()) < 6:
            assert not run.done()
            await asyncio.sleep(0.02)
        os.kill(pool.pids[0], signal.SIGKILL)
        outcome = await run
    finally:
        await pool.close()
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    assert sorted(r["id"] for r in lines) == [f"q{i:02d}" for i in range(40)]  # each exactly once
    assert runner.retried >= 1 and outcome.errors == 0 and outcome.summary["accuracy"] == 0.8
    local = await execute(load_run_config(path, ["name=local", "executor={kind: local}"]), load(cfg.dataset), progress=False)
    assert {r["id"]: r["answer"] for r in lines} == {k: v["answer"] for k, v in records(local.directory).items()}


@pytest.mark.ray
def test_the_run_budget_holds_across_workers_and_the_problems_it_leaves_are_recorded_as_not_started(ray_address, tmp_path, no_workers_left):
    config, run = write_config(tmp_path), tmp_path / "runs" / "sums"
    budgets = ["--set", "global_budget.generated_tokens=600", "--set", "budget.generated_tokens=90"]
    done = cli("run", str(config), "-q", "-v", "--ray", ray_address, "--set", "executor.workers=2", *budgets)
    assert done.exit_code == 1  # as a local run: problems not started are errors, for --resume
    first = records(run)
    started = [r for r in first.values() if not r["error"]]
    left = [r for r in first.values() if r["error"]]
    assert sorted(first) == [f"q{i:02d}" for i in range(40)] and started and left
    assert sum(r["tokens"]["generated"] for r in first.values()) <= 600  # the two workers together
    assert all(0 < r["tokens"]["generated"] <= 90 for r in started)  # each problem's own budget, on each worker
    assert {r["error"] for r in left} == {"not started: the run's global budget is spent (generated_tokens 600)"}
    assert all(r["tokens"]["generated"] == 0 for r in left)

    again = cli("run", str(config), "-q", "-v", "--ray", ray_address, "--set", "executor.workers=2", "--resume", *budgets)
    second = records(run)
    assert again.exit_code == (1 if any(r["error"] for r in second.values()) else 0)
    assert {k: second[k] for k in (r["id"] for r in started)} == {r["id"]: r for r in started}  # answered ones stay
    assert sum(not r["error"] for r in second.values()) > len(started)  # a new budget, more answered


class EngineDeadError(RuntimeError):
    """Named as vLLM's: the solver takes it for a dead engine, which no other problem survives."""


def dies_on_seven(call):
    """The scripted engine, dying whenever it is asked what 7 + 14 is."""
    if "What is 7 + 14?" in call.prompt:
        raise EngineDeadError("engine core died")
    return answer(call)


@pytest.mark.ray
async def test_an_engine_that_dies_restarts_its_worker_and_a_problem_that_kills_every_worker_is_an_error(ray_address, tmp_path, no_workers_left):
    from ponder.app.cluster.worker_pool import WorkerPool

    path = write_config(tmp_path, extra=f"executor: {{kind: ray, address: '{ray_address}', workers: 2, retries: 1}}\n")
    path.write_text(path.read_text().replace("ponder.tests.app.runs:answer", "ponder.tests.app.cluster.test_ray:dies_on_seven"))
    cfg = load_run_config(path)
    pool = WorkerPool(cfg.executor, cfg.backend, cfg.seed, cfg.concurrency)
    await pool.start()
    try:
        runner = pool.runner(cfg, path.parent)
        outcome = await execute(cfg, load(cfg.dataset), progress=False, runner=runner)
    finally:
        await pool.close()
    lines = [json.loads(x) for x in (tmp_path / "runs" / "sums" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in lines) == [f"q{i:02d}" for i in range(40)]  # the others all finished, once
    (dead,) = [r for r in lines if r["error"]]
    assert dead["id"] == "q07" and dead["error"] == "2 workers died solving it (last: EngineDeadError: engine core died)"
    # q07 went back once; problems beside it on the restarted worker went back too, uncounted against them
    assert runner.retried >= 1 and outcome.errors == 1 and sum(runner.solved) == 39


@pytest.mark.ray
async def test_a_worker_waiting_for_room_starts_when_a_node_joins_and_takes_problems(ray_address, tmp_path, no_workers_left):
    from ponder.app.cluster.worker_pool import WorkerPool

    # three workers of 1 CPU on a 2-CPU cluster: the third waits; one problem at a time each
    path = write_config(tmp_path, delay=0.05, n=24, extra=f"executor: {{kind: ray, address: '{ray_address}', workers: 3}}\nconcurrency: 1\n")
    cfg = load_run_config(path)
    pool = WorkerPool(cfg.executor, cfg.backend, cfg.seed, cfg.concurrency)
    await pool.start()
    node = None
    try:
        runner = pool.runner(cfg, path.parent)
        run = asyncio.create_task(execute(cfg, load(cfg.dataset), progress=False, runner=runner))
        await asyncio.sleep(1)
        (waiting,) = {0, 1, 2} - set(pool.pids)  # two started, one waits for room
        node = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--address", ray_address, "--block", "--num-cpus", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"})
        while len(pool.pids) < 3:
            assert not run.done(), "the run ended before the new node's worker started"
            await asyncio.sleep(0.1)
        outcome = await run
    finally:
        await pool.close()
        if node is not None:
            node.terminate()
            node.wait(60)
    assert outcome.errors == 0 and sum(runner.solved) == 24 and runner.solved[waiting] > 0, runner.solved
    lines = (tmp_path / "runs" / "sums" / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["id"] for x in lines) == [f"q{i:02d}" for i in range(24)]


@pytest.mark.ray
def test_a_driver_killed_mid_run_resumes_without_redoing_answered_problems(ray_address, tmp_path, no_workers_left):
    config = write_config(tmp_path, delay=0.01)
    results = tmp_path / "runs" / "sums" / "results.jsonl"
    proc = subprocess.Popen([PONDER, "run", str(config), "-q", "--ray", ray_address], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.time() + 120
    while not (results.exists() and len(results.read_text().splitlines()) >= 8):
        assert proc.poll() is None and time.time() < end, proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no results"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    kept = results.read_text().splitlines()
    assert 8 <= len(kept) < 40

    done = ponder("run", str(config), "-q", "--ray", ray_address, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"{results.parent}: 40 problems ({len(kept)} from before)")
    final = results.read_text().splitlines()
    assert final[: len(kept)] == kept and len(final) == 40  # nothing answered was redone
    assert sorted(json.loads(x)["id"] for x in final) == [f"q{i:02d}" for i in range(40)]


@pytest.mark.ray
def test_a_cluster_without_the_gpus_or_with_another_ray_is_one_line_and_writes_nothing(ray_address, tmp_path, no_workers_left):
    import ray

    config = write_config(tmp_path)
    done = ponder("run", str(config), "-q", "--ray", ray_address, "--set", "executor.gpus_per_worker=1")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("error: executor: a worker asks for 1 CPU and 1 GPU (cpus_per_worker, gpus_per_worker), "
                           "and no node of the Ray cluster has them (2 CPU 0 GPU)\n")
    # this machine's Ray as another version would report itself: Ray's own check at connection refuses it
    probe = textwrap.dedent(f"""
        import sys
        import ray._private.utils as utils
        real = utils.compute_version_info()
        utils.compute_version_info = lambda: ("2.0.0", real[1])
        sys.argv = ["ponder", "run", {str(config)!r}, "-q", "--ray", {ray_address!r}]
        from ponder.cli import main
        main()
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    python = ".".join(map(str, sys.version_info[:3]))
    assert done.stderr == (f"error: --ray {ray_address}: the cluster runs Ray {ray.__version__} on Python {python}, this machine "
                           f"Ray 2.0.0 on Python {python}: install the cluster's versions here\n")
    assert not (tmp_path / "runs").exists()


@pytest.mark.ray
@pytest.mark.engine
def test_a_worker_runs_the_embedded_model_on_the_real_engine(ray_address, tmp_path, no_workers_left):
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"id": f"s{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i)}) + "\n" for i in (2, 3)))
    config = tmp_path / "real.yaml"
    config.write_text(
        "name: real\nbackend: {kind: vllm, engine: {max_model_len: 512, kv_cache_gib: 1}}\n"
        "strategy: {name: best_of_n, config: {n: 2, max_tokens: 24}}\n"
        f"dataset: {{name: \"{data}\"}}\noutput_dir: {tmp_path / 'runs'}\n"
    )
    done = ponder("run", str(config), "-q", "--ray", ray_address)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "runs" / "real"
    assert done.stdout.startswith(f"{run}: 2 problems (0 from before)")
    lines = records(run)
    assert sorted(lines) == ["s2", "s3"] and all(r["error"] is None and len(r["candidates"]) == 2 for r in lines.values())
    assert all(0 < r["tokens"]["generated"] <= 48 and r["requests"] >= 1 for r in lines.values())
    assert all(len(json.loads((run / r["trace"]).read_text())["nodes"]) == 3 for r in lines.values())  # the prompt, two samples
    assert "engine" in (run / "engine.log").read_text().lower()
