"""The sweep job: every run cell through `batch.execute` on shared engines, then the analysis.

Cells with one backend section share one engine start (as `ponder run A.yaml B.yaml` does);
at most one engine is up at a time. Each cell is an ordinary run directory under SWEEP_DIR,
so a killed sweep resumes cell by cell, problem by problem, and `ponder report` reads a cell.
With `difficulty:` the table is fitted once every cell is done, and compute_optimal then runs
on the held-out problems, one run directory per budget.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...records.problem import Problem
from ...strategies.compute_optimal import Policy, read_policy
from ..run.batch import CompletedRun, execute, prepare, run_dir
from ..run.run_config import BackendSection
from ..run.shard import Shard
from ..run.store import RunStore
from ..run.terminal import Terminal
from .difficulty import BinRow, is_fit, oracle_bins, pass_rates, per_bin, sampling_cell, waves
from .frontier import plot
from .outcomes import Outcome, elapsed, read_outcomes
from .plan import Cell, Sweep
from .policy import Comparison, compare, fit, optimal_config, write_policy
from .summary import Row, make_rows, table, write_csv


def plan_runs(sweep: Sweep, resume: bool, data_dir: str | None, shard: Shard | None) -> list[tuple[Cell, list[Problem]]]:
    """Each run cell with its problems; a cell that would mix with earlier results (no
    --resume, or a changed config) fails here, before any engine starts."""
    plans = []
    for cell in sweep.runs:
        problems = prepare(cell.config, None, data_dir, shard)
        RunStore(run_dir(cell.config, shard)).check_resume(cell.config.model_dump(mode="json"), resume)
        plans.append((cell, problems))
    return plans


class Engines:
    """One engine at a time, kept up while consecutive cells share its backend section; or one
    backend the caller owns (`shared`) for every cell."""

    def __init__(self, terminal: Terminal | None, shared: Any = None) -> None:
        self.section: BackendSection | None = None
        self.backend: Any = shared
        self.shared = shared
        self.terminal = terminal

    async def get(self, section: BackendSection, seed: int) -> Any:
        if self.shared is not None or (self.backend is not None and section == self.section):
            return self.backend
        await self.close()
        started = time.monotonic()
        self.backend, self.section = section.build(seed), section
        if self.terminal:
            self.terminal.say(f"engine ready in {time.monotonic() - started:.0f} s")
        return self.backend

    async def close(self) -> None:
        if self.backend is not None and self.shared is None:
            await self.backend.close()
            self.backend = self.section = None


async def run_sweep(
    sweep: Sweep, plans: list[tuple[Cell, list[Problem]]], resume: bool, progress: bool,
    terminal: Terminal | None, shard: Shard | None, backend: Any = None,
) -> list[CompletedRun]:
    """Every run cell (grouped by backend section), then compute_optimal; `backend`: one the
    caller owns, used for every cell instead of starting engines."""
    order = sorted(plans, key=lambda p: next(i for i, q in enumerate(plans) if q[0].config.backend == p[0].config.backend))
    engines = Engines(terminal, backend)
    done = []
    try:
        for cell, problems in order:
            if terminal:
                terminal.say(f"cell {cell.name}: strategy {cell.config.strategy.name}, {len(problems)} problems")
            engine = await engines.get(cell.config.backend, cell.config.seed)
            done.append(await execute(cell.config, problems, resume=resume, progress=progress, backend=engine, terminal=terminal, shard=shard))
        if sweep.difficulty and sweep.difficulty.run and shard is None:
            done += await run_optimal(sweep, dict((c.name, p) for c, p in plans), resume, progress, terminal, engines)
    finally:
        await engines.close()
    return done


async def run_optimal(
    sweep: Sweep, problems: dict[str, list[Problem]], resume: bool, progress: bool, terminal: Terminal | None, engines: Engines,
) -> list[CompletedRun]:
    """compute_optimal at each fitted budget on the held-out problems (resumed alike)."""
    policy = fit_policy(sweep, read_outcomes(sweep))
    if policy is None:
        return []
    sampler = sampling_cell(sweep)
    held = [p for p in problems[sampler.name] if not is_fit(p.id)]
    out = []
    for allocation in policy[0].budgets:
        config = optimal_config(sampler, policy[1], allocation.tokens, sweep.directory)
        if terminal:
            terminal.say(f"cell {config.name}: {len(held)} held-out problems")
        engine = await engines.get(config.backend, config.seed)
        out.append(await execute(config, held, resume=resume, progress=progress, backend=engine, terminal=terminal))
    return out


def fit_policy(sweep: Sweep, outcomes: list[Outcome]) -> tuple[Policy, Path] | None:
    """Fit and write SWEEP_DIR/policy.json; None without `difficulty:` or a sampling run."""
    if sweep.difficulty is None:
        return None
    sampler_cell = sampling_cell(sweep)
    sampler = next((o for o in outcomes if o.cell.name == sampler_cell.name), None)
    if sampler is None:
        return None
    d = sweep.difficulty
    policy = fit(sampler, outcomes, waves(sampler, d.wave), d.budgets, d.wave)
    return policy, write_policy(policy, sweep.directory / "policy.json")


@dataclass(frozen=True)
class Analysis:
    rows: list[Row]
    comparisons: list[Comparison]
    files: list[Path]
    bins: list[BinRow] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join([table(self.rows), *bin_table(self.bins), *(c.line() for c in self.comparisons)])


def analyse(sweep: Sweep) -> Analysis:
    """summary.csv, frontier.png and (with `difficulty:`) bins.csv and compute_optimal.csv."""
    outcomes = read_outcomes(sweep)
    if not outcomes:
        raise ValueError(f"{sweep.directory}: no cell has results yet")
    optimal = optimal_outcomes(sweep)
    rows = make_rows([*outcomes, *optimal])
    cells = rows[: len(outcomes)]
    files = [write_csv(rows, sweep.directory / "summary.csv"),
             plot(cells, sweep.directory / "frontier.png", f"sweep {sweep.name}", extra=rows[len(outcomes):])]
    comparisons: list[Comparison] = []
    binned: list[BinRow] = []
    if sweep.difficulty is not None:
        sampler = next((o for o in outcomes if o.cell.name == sampling_cell(sweep).name), None)
        if sampler is not None:
            bins = oracle_bins(pass_rates(sampler), sweep.difficulty.bins)
            levels = {i: w.level for i, w in waves(sampler, sweep.difficulty.wave).items()}
            binned = per_bin([*outcomes, *optimal], bins, "oracle") + per_bin([*outcomes, *optimal], levels, "predicted")
            files.append(_write(binned, sweep.directory / "bins.csv"))
        comparisons = [c for c in (compare(o, outcomes) for o in optimal) if c is not None]
        if comparisons:
            files.append(_write(comparisons, sweep.directory / "compute_optimal.csv"))
    return Analysis(rows, comparisons, files, binned)


def bin_table(rows: list[BinRow]) -> list[str]:
    """Accuracy per oracle bin (1 the easiest), a column per bin and a line per cell."""
    oracle = [r for r in rows if r.kind == "oracle"]
    if not oracle:
        return []
    bins = sorted({r.bin for r in oracle})
    cells = list(dict.fromkeys(r.cell for r in oracle))
    at = {(r.cell, r.bin): r for r in oracle}
    sizes = {b: max(r.problems for r in oracle if r.bin == b and not r.cell.startswith("compute_optimal")) for b in bins}
    head = f"{'accuracy by oracle bin':28} " + " ".join(f"{f'bin {b} ({sizes[b]})':>11}" for b in bins)
    lines = ["", head, "-" * len(head)]
    for c in cells:
        lines.append(f"{c[:28]:28} " + " ".join(f"{at[(c, b)].accuracy:11.3f}" if (c, b) in at else f"{'-':>11}" for b in bins))
    return lines


def optimal_outcomes(sweep: Sweep) -> list[Outcome]:
    """The compute_optimal runs the sweep made at the budgets of its policy.json."""
    path = sweep.directory / "policy.json"
    if sweep.difficulty is None or not path.is_file():
        return []
    out = []
    for allocation in read_policy(str(path.resolve())).budgets:
        config = optimal_config(sampling_cell(sweep), path, allocation.tokens, sweep.directory)
        store = RunStore(run_dir(config))
        if store.results.is_file():
            out.append(Outcome(Cell(config.name, config, ()), tuple(store.records()), "run (held-out problems)", elapsed(store.dir)))
    return out


def _write(items: list[Any], path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        rows = [_flat(asdict(i)) for i in items]
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


def _flat(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update({f"{k}_{kk}": vv for kk, vv in v.items() if kk != "level"})
        else:
            out[k] = v
    return out
