"""A batch run on Ray workers against the same run in this process (scripted backend).

One local Ray cluster (2 CPUs) serves every round. Each round runs the same 40 sums three
ways, in an order that rotates between rounds: `local` (batch.execute in this process, one
backend, `concurrency` problems at once), `ray x1` (one Ray worker with the same concurrency:
what Ray adds per problem, as (ray x1 - local) / problems) and `ray x2` (two workers, the local
two-worker cluster). The scripted backend sleeps `--delay` s per generated token, standing in
for an engine's time; `--delay 0` leaves only the orchestration. Worker start (a process
each, no engine) is timed apart and not in the run times. Every run writes its own run
directory, and the three must hold the same answers.

Run: .venv/bin/python bench/ray.py [--rounds 5] [--problems 40] [--delay 0.002] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

# this file is named ray.py: its folder, first on the path, would shadow the package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from ponder.app.run.batch import execute  # noqa: E402
from ponder.app.data.datasets import load  # noqa: E402
from ponder.app.run.run_config import load_run_config  # noqa: E402
from ponder.app.cluster.worker_pool import WorkerPool  # noqa: E402

CONFIG = """\
name: {name}
backend: {{kind: scripted, options: {{script: "ponder.tests.app.runs:answer", token_delay_s: {delay}}}}}
strategy: {{name: best_of_n, config: {{n: 3, max_tokens: 48}}}}
dataset: {{name: "{data}"}}
concurrency: {concurrency}
output_dir: {out}
"""


async def timed_run(cfg, problems, pool: WorkerPool | None, base: Path) -> tuple[float, dict[str, str]]:
    started = time.perf_counter()
    done = await execute(cfg, problems, progress=False, runner=pool.runner(cfg, base) if pool else None)
    wall = time.perf_counter() - started
    answers = {json.loads(x)["id"]: json.loads(x)["answer"] for x in (done.directory / "results.jsonl").read_text().splitlines()}
    return wall, answers


async def main(args: argparse.Namespace) -> None:
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="ponder-bench-ray-"))
    data = tmp / "sums.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i:02d}", "problem": f"What is {i} + {2 * i}?", "answer": str(3 * i)}) + "\n"
                            for i in range(args.problems)))
    path = tmp / "bench.yaml"
    path.write_text(CONFIG.format(name="run", delay=args.delay, data=data, concurrency=args.concurrency, out=tmp / "runs"))
    started = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"local Ray cluster (2 CPUs) up in {time.perf_counter() - started:.1f} s")
    setups = ["local", "ray x1", "ray x2"]
    walls: dict[str, list[float]] = {s: [] for s in setups}
    starts: dict[str, list[float]] = {"ray x1": [], "ray x2": []}
    try:
        for r in range(args.rounds):
            order = setups[r % 3:] + setups[: r % 3]
            answers = []
            for setup in order:
                cfg = load_run_config(path, [f"name=r{r}-{setup.replace(' ', '')}"])
                pool = None
                if setup != "local":
                    workers = int(setup[-1])
                    cfg = load_run_config(path, [f"name=r{r}-{setup.replace(' ', '')}", f"executor={{kind: ray, workers: {workers}}}"])
                    pool = WorkerPool(cfg.executor, cfg.backend, cfg.seed, cfg.concurrency)
                    t0 = time.perf_counter()
                    await pool.start()
                    while len(pool.pids) < workers:
                        await asyncio.sleep(0.01)
                    starts[setup].append(time.perf_counter() - t0)
                try:
                    wall, got = await timed_run(cfg, load(cfg.dataset), pool, path.parent)
                finally:
                    if pool is not None:
                        await pool.close()
                walls[setup].append(wall)
                answers.append(got)
            assert all(a == answers[0] for a in answers) and len(answers[0]) == args.problems, "setups answered differently"
            print(f"round {r + 1}: " + ", ".join(f"{s} {walls[s][-1]:.2f} s" for s in setups))
    finally:
        ray.shutdown()
    print(f"\n{args.problems} problems, best_of_n n=3, {args.delay} s/token, concurrency {args.concurrency} per worker, {args.rounds} rounds")
    print(f"{'setup':8} {'wall s per run (each round)':40} {'mean':>6} {'min-max':>12} {'vs local':>9}")
    local = statistics.mean(walls["local"])
    for s in setups:
        w = walls[s]
        each = " ".join(f"{x:.2f}" for x in w)
        print(f"{s:8} {each:40} {statistics.mean(w):6.2f} {min(w):5.2f}-{max(w):<5.2f} {local / statistics.mean(w):8.2f}x")
    per = [(x1 - lo) / args.problems * 1000 for x1, lo in zip(walls["ray x1"], walls["local"])]
    print(f"Ray overhead per problem (ray x1 - local, same round): {statistics.mean(per):.1f} ms "
          f"(rounds: {' '.join(f'{x:.1f}' for x in per)}; min-max {min(per):.1f}-{max(per):.1f})")
    for s, t in starts.items():
        print(f"worker start ({s}): mean {statistics.mean(t):.2f} s, min-max {min(t):.2f}-{max(t):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--problems", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.002)
    parser.add_argument("--concurrency", type=int, default=4)
    asyncio.run(main(parser.parse_args()))
