"""Each cell's per-problem records, read back from its run directory (or its shards'), or for a
derived cell estimated from the run it is derived from (app/sweep/subsample.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..run.merge import combine
from ..run.store import RunStore
from .plan import Cell, Sweep
from .subsample import subsample_records


@dataclass(frozen=True)
class Outcome:
    """A cell's latest record per problem; `correct` is a fraction for a derived cell (its
    expected accuracy on that problem) and a bool or None for a run."""

    cell: Cell
    records: tuple[dict[str, Any], ...]
    source: str  # "run", "shards i/N" or "subsampled from CELL"
    elapsed: float | None = None  # the run's wall time as its summary.json says (a derived cell: k/n of it)

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {str(r["id"]): r for r in self.records}


def cell_dir(sweep: Sweep, cell: Cell) -> Path:
    return sweep.directory / cell.name


def elapsed(directory: Path) -> float | None:
    try:
        return float(json.loads((directory / "summary.json").read_text(encoding="utf-8"))["wall_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_run(sweep: Sweep, cell: Cell) -> Outcome | None:
    """The records of a run cell: its own directory, else whatever shards of it exist."""
    store = RunStore(cell_dir(sweep, cell))
    if store.results.is_file():
        return Outcome(cell, tuple(store.records()), "run", elapsed(store.dir))
    shards = sorted(p for p in sweep.directory.glob(f"{cell.name}-shard-*-of-*") if (p / "summary.json").is_file())
    if not shards:
        return None
    merged = combine(shards)
    count = merged.parts[0].shard.count if merged.parts[0].shard else 1
    return Outcome(cell, tuple(merged.records), f"shards {len(merged.parts)}/{count}", merged.wall_s)


def read_outcomes(sweep: Sweep) -> list[Outcome]:
    """Every cell that has results (a cell not started yet is left out)."""
    runs: dict[str, Outcome] = {}
    for cell in sweep.runs:
        found = read_run(sweep, cell)
        if found is not None:
            runs[cell.name] = found
    out = []
    for cell in sweep.cells:
        if cell.derived_from is None:
            if cell.name in runs:
                out.append(runs[cell.name])
        elif cell.derived_from in runs:
            run = runs[cell.derived_from]
            share = cell.k / run.cell.k
            out.append(Outcome(cell, tuple(subsample_records(list(run.records), cell.k)), f"subsampled from {cell.derived_from}",
                               None if run.elapsed is None else run.elapsed * share))
    return out
