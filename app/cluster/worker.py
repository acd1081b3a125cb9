"""One worker of a Ray run (app/cluster/worker_pool.py): a process holding its own backend (engine), in
which problems are solved by the same Solver a local run uses.

The class is plain Python: the pool makes it a Ray actor, so this module imports no Ray. A
worker solves several problems at once (its actor runs `solve` calls concurrently on one event
loop), every sample of a problem on its one engine, so the prefix cache serves them as it does
locally. What comes back is the Result as a local run writes it, its trace as the JSON a trace
saves (a live trace holds its context, which holds the engine: it does not leave the process).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ...records.problem import Problem
from ...records.result import Result
from ...runtime.budget import Budget
from ..run.batch import build_scorer, make_solver
from ..run.imports import import_module
from ..run.run_config import RunConfig


@dataclass(frozen=True)
class SavedTrace:
    """A trace as its JSON: what the run store needs of a trace (`save`)."""

    data: dict[str, Any]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.data))


class Worker:
    def __init__(self, backend: Any, seed: int) -> None:
        """`backend`: the run's BackendSection, built here (an engine on this worker's node)."""
        self.backend = backend.build(seed)
        self.scorers: dict[str, tuple[Any, Any]] = {}  # per config (several may share one engine)

    def ready(self) -> int:
        """The process id, once the engine is up."""
        return os.getpid()

    async def solve(self, config: RunConfig, base: str, problem: Problem, budget: Budget) -> Result:
        """One problem under `budget` (its share of the run's budget), as a local run solves it:
        a failure is a Result with `error`; a dead engine raises, and the pool restarts the worker."""
        key = config.model_dump_json()
        if key not in self.scorers:
            for item in config.imports:  # what the config registers, imported as the driver did
                import_module(item, Path(base))
            self.scorers[key] = await build_scorer(config, self.backend)
        solver = make_solver(config, self.backend, self.scorers[key][0], budget)
        (result,) = await solver.solve_many([problem], 1)
        return replace(result, trace=SavedTrace(result.trace.to_json()) if result.trace is not None else None)

    async def close(self) -> None:
        for _, own in self.scorers.values():
            if own is not None:
                await own.close()
        await self.backend.close()
