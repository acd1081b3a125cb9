"""`ponder run`: a dataset through a strategy into a run directory, resumable.

Everything that can be wrong with the inputs (config, dataset, model, engine options, a resume
under a different config) is checked before the run directory is created. Results are flushed
per problem, so Ctrl-C or a dead engine loses no finished problem. A problem that fails becomes
a record with an `error` and the run goes on; `resume` skips answered ids and retries errored ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...records.problem import Problem
from ...records.result import Result
from ...verifiers.base import EngineOwner
from ..data.datasets import load
from .progress import Progress
from .run_config import RunConfig
from .shard import Shard
from .store import RunStore
from .terminal import Terminal


@dataclass(frozen=True)
class CompletedRun:
    """What `execute` hands back once every problem has a record (or the run stopped)."""

    directory: Path
    summary: dict[str, Any]
    skipped: int  # answered in an earlier attempt
    errors: int  # problems whose latest record is an error


def run_dir(config: RunConfig, shard: Shard | None = None) -> Path:
    run = Path(config.output_dir) / config.name
    return shard.directory(run) if shard else run


def select(config: RunConfig, limit: int | None, data_dir: str | None, shard: Shard | None = None) -> list[Problem]:
    """The run's problems: the first `limit`, then the shard's share of those."""
    problems = load(config.dataset, data_dir)
    if not problems:
        raise ValueError(f"dataset {config.dataset.name!r} holds no problems")
    problems = problems[:limit] if limit else problems
    return shard.select(problems) if shard else problems


def prepare(config: RunConfig, limit: int | None, data_dir: str | None, shard: Shard | None = None) -> list[Problem]:
    """The run's problems (`select`), once its in-process models are provisioned."""
    problems = select(config, limit, data_dir, shard)
    from ...backends.models import resolve

    for section in (config.backend, config.scorer.backend if config.scorer else None):
        if section is not None and section.kind == "vllm":
            resolve(section.model)
    return problems


async def build_scorer(config: RunConfig, backend: Any) -> tuple[Any, Any]:
    """The config's step scorer (None without one), and the backend only it uses (None when it
    shares `backend`): the caller closes that one."""
    from ...verifiers import make_scorer

    if not config.scorer:
        return None, None
    own = config.scorer.backend.build(config.seed) if config.scorer.backend is not None else None
    try:
        return make_scorer(config.scorer.name, own or backend, **config.scorer.options), own
    except BaseException:
        if own is not None:
            await own.close()
        raise


def make_solver(config: RunConfig, backend: Any, scorer: Any, global_budget: Any = None) -> Any:
    """The config's Solver; `global_budget` stands in for the run's (a Ray worker solves each
    problem under the share of the run's budget its driver granted)."""
    from ...runtime.solver import Solver
    from ...strategies.base import make_strategy

    return Solver(
        backend, make_strategy(config.strategy.name, **config.strategy.config), scorer, config.prompt,
        config.budget, config.global_budget if global_budget is None else global_budget, config.seed, config.delimiter,
    )


async def execute(
    config: RunConfig, problems: list[Problem], resume: bool = False, progress: bool = True,
    backend: Any = None, terminal: Terminal | None = None, shard: Shard | None = None, runner: Any = None,
) -> CompletedRun:
    """`runner`: solves the problems in place of a Solver built here (a Ray worker pool's runner,
    app/cluster/worker_pool.py: its `solve_many` and `ledger` are a Solver's)."""
    store = RunStore(run_dir(config, shard))
    resolved = config.model_dump(mode="json")
    store.check_resume(resolved, resume)
    owned = backend is None and runner is None
    scorer = scorer_backend = None
    started = time.monotonic()
    if owned:
        backend = config.backend.build(config.seed)
        if terminal:
            terminal.say(f"engine ready in {time.monotonic() - started:.0f} s")
    try:
        if runner is None:
            scorer, scorer_backend = await build_scorer(config, backend)
            solver = make_solver(config, backend, scorer)
        else:
            solver = runner
        # the run directory appears only once the engines are up: a failed start leaves nothing
        store.create(resolved)
        if terminal and terminal.log is not None:
            terminal.move_log(store.dir / "engine.log")
        done = store.done_ids()
        started = time.monotonic()
        try:
            stream = terminal.err if terminal else None
            with Progress(len(problems), sum(p.id in done for p in problems), enabled=progress, stream=stream) as bar:
                async def flush(problem: Problem, result: Result) -> None:
                    bar.update(store.append(problem, result), solver.ledger)

                # each result is on disk once `flush` returns: the solver keeps none in memory
                retries = {} if runner is None else {"on_retry": bar.retry}
                await solver.solve_many([p for p in problems if p.id not in done], config.concurrency, on_result=flush,
                                        keep_results=False, **retries)
        finally:
            records = store.records()
            summary = store.write_summary(config.name, config.strategy.name, records, time.monotonic() - started,
                                          **({"shard": shard.to_json()} if shard else {}))
    finally:
        if owned:
            await backend.close()
        if scorer_backend is not None:
            await scorer_backend.close()
        if isinstance(scorer, EngineOwner):
            scorer.close()
    return CompletedRun(store.dir, summary, len(done), summary["errors"])
