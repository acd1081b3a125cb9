"""`ponder run`: a dataset through a strategy into a run directory, resumable.

Everything that can be wrong with the inputs (config, dataset, model, engine options) is
checked before the run directory is created. Results are flushed per problem, so Ctrl-C or a dead engine loses
no finished problem, and `resume` skips the ids already in results.jsonl.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .datasets import load
from ..records.problem import Problem
from ..records.result import Result
from .run_config import BackendSection, RunConfig
from .store import RunStore


@dataclass(frozen=True)
class RunOutcome:
    directory: Path
    summary: dict[str, Any]
    skipped: int  # finished in an earlier attempt


def run_dir(config: RunConfig) -> Path:
    return Path(config.output_dir) / config.name


def prepare(config: RunConfig, limit: int | None, data_dir: str | None) -> list[Problem]:
    problems = load(config.dataset, data_dir)
    if not problems:
        raise ValueError(f"dataset {config.dataset.name!r} holds no problems")
    from ..backends.models import resolve

    for section in (config.backend, config.scorer.backend if config.scorer else None):
        if section is not None and section.kind == "vllm":
            resolve(section.model)
    return problems[:limit] if limit else problems


def build_backend(b: BackendSection, seed: int = 0):
    if b.kind == "vllm":
        from ..backends.vllm import EngineConfig, VllmBackend

        return VllmBackend(EngineConfig(model=b.model, **{"seed": seed, **b.engine}))
    from ..backends.openai import OpenAIBackend, OpenAIConfig

    return OpenAIBackend(OpenAIConfig(endpoints=b.endpoints, model=b.model, **b.options))


async def execute(
    config: RunConfig, problems: list[Problem], resume: bool = False, progress: bool = True, backend: Any = None,
) -> RunOutcome:
    from ..strategies.base import make_strategy
    from ..verifiers import make_scorer
    from ..runtime.solver import Solver

    store = RunStore(run_dir(config))
    if store.results.exists() and not resume:
        raise ValueError(f"{store.dir} already holds results: pass --resume to continue it, or choose another name")
    owned = backend is None
    backend = backend or build_backend(config.backend, config.seed)
    scorer_backend = None
    try:
        scorer = None
        if config.scorer:
            if config.scorer.backend is not None:
                scorer_backend = build_backend(config.scorer.backend, config.seed)
            scorer = make_scorer(config.scorer.name, scorer_backend or backend, **config.scorer.options)
        solver = Solver(
            backend, make_strategy(config.strategy.name, **config.strategy.config), scorer, config.prompt,
            config.budget, config.global_budget, config.seed, config.delimiter,
        )
        # the run directory appears only once the engines are up: a failed start leaves nothing
        store.create(config.model_dump(mode="json"))
        done = store.done_ids()
        started = time.monotonic()
        try:
            with Progress(len(problems), len(done), enabled=progress) as bar:
                async def flush(problem: Problem, result: Result) -> None:
                    bar.update(store.append(problem, result), solver.ledger)

                await solver.solve_many([p for p in problems if p.id not in done], config.concurrency, on_result=flush)
        finally:
            summary = store.write_summary(config.name, config.strategy.name, store.records(), time.monotonic() - started)
    finally:
        if owned:
            await backend.close()
        if scorer_backend is not None:
            await scorer_backend.close()
    return RunOutcome(store.dir, summary, len(done))


class Progress:
    """A rich progress bar with live accuracy, generated tokens/s and prefix-cache hit rate."""

    def __init__(self, total: int, done: int, enabled: bool = True) -> None:
        self.total, self.done, self.enabled = total, done, enabled
        self.correct = self.graded = 0
        self.started = time.monotonic()

    def __enter__(self) -> "Progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[stats]}"))
            self._bar.__enter__()
            self._task = self._bar.add_task("solving", total=self.total, completed=self.done, stats="")
        return self

    def update(self, record: dict[str, Any], ledger: Any) -> None:
        if record["correct"] is not None:
            self.graded += 1
            self.correct += bool(record["correct"])
        if not self.enabled:
            return
        rate = ledger.generated_tokens / max(time.monotonic() - self.started, 1e-6)
        hit = ledger.cached_tokens / ledger.prompt_tokens if ledger.prompt_tokens else 0.0
        acc = f"acc {self.correct / self.graded:.1%}" if self.graded else "acc -"
        self._bar.update(self._task, advance=1, stats=f"{acc} | {rate:.0f} tok/s | cache hit {hit:.0%}")

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.__exit__(*exc)  # type: ignore[arg-type]
