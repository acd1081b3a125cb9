"""How hard each problem is, two ways (Snell et al. 2024):

- oracle bins: the policy's pass rate over the sweep's largest sampling cell (right samples / n),
  cut into quantile bins, bin 1 the easiest. Needs the reference: for analysis only.
- predicted level: what a first wave of w samples says before any answer is known, the size
  of its largest group of agreeing answers (0 .. w; w: all agree, an easy problem). The
  compute_optimal strategy computes the same from its own wave at run time.

Problems are split by id into a fitting half and a held-out half (the shard rule of
app/run/shard.py: the same split on every machine and in every process).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ...records.result import Candidate
from ...verifiers.answer import equivalent
from ...verifiers.voting import clusters, select
from ..run.shard import Shard
from ..run.stats import bootstrap_mean
from .outcomes import Outcome
from .plan import Cell, Sweep, sampling_family
from .summary import graded

FIT = Shard(0, 2)  # problems fitted on; the others are held out


def is_fit(problem_id: str) -> bool:
    return FIT.holds(problem_id)


def sampling_cell(sweep: Sweep) -> Cell:
    """The cell whose samples give pass rates and waves: the one named, else the run best-of-n
    majority cell with the largest n (the first such in the file)."""
    if sweep.difficulty and sweep.difficulty.cell:
        return sweep.cell(sweep.difficulty.cell)
    runs = [c for c in sweep.runs if sampling_family(c.config) is not None]
    if not runs:
        raise ValueError(f"{sweep.path}: difficulty needs a best-of-n majority cell with temperature > 0 to sample from")
    return max(runs, key=lambda c: c.k)


def pass_rates(outcome: Outcome) -> dict[str, float]:
    """Right samples / samples per graded problem."""
    out = {}
    for r in outcome.records:
        if r.get("reference") is None or r.get("error") or not r["candidates"]:
            continue
        out[str(r["id"])] = sum(equivalent(a or "", r["reference"]) for a in r["candidates"] if a) / len(r["candidates"])
    return out


def oracle_bins(rates: dict[str, float], bins: int) -> dict[str, int]:
    """Quantile bins of the pass rate, 1 the easiest; equal rates share a bin (by their mean rank)."""
    order = sorted(rates, key=lambda i: -rates[i])
    rank: dict[float, list[int]] = {}
    for pos, i in enumerate(order):
        rank.setdefault(rates[i], []).append(pos)
    n = len(order)
    return {i: 1 + min(bins - 1, int(sum(rank[rates[i]]) / len(rank[rates[i]]) * bins / n)) for i in order}


@dataclass(frozen=True)
class Wave:
    """A problem's first wave: its agreement level and whether the wave's own majority is right."""

    level: int
    right: bool
    share: float  # the wave's samples / the run's: what the wave costs of the run's spend


def waves(outcome: Outcome, w: int) -> dict[str, Wave]:
    """The first `w` samples of each problem in the sampling cell, as a first wave of w would be."""
    out = {}
    for r in outcome.records:
        if r.get("reference") is None or r.get("error") or len(r["candidates"]) < w:
            continue
        first = [Candidate(text=a or "", answer=a or "") for a in r["candidates"][:w]]
        groups = clusters(first)
        level = max((len(g) for g in groups), default=0)
        right = bool(groups) and equivalent(select(first, "majority").answer, r["reference"])
        out[str(r["id"])] = Wave(level, right, w / len(r["candidates"]))
    return out


@dataclass(frozen=True)
class BinRow:
    cell: str
    kind: str  # "oracle" or "predicted"
    bin: int
    problems: int
    accuracy: float
    acc_lo: float
    acc_hi: float


def per_bin(outcomes: Sequence[Outcome], bins: dict[str, int], kind: str) -> list[BinRow]:
    """Each cell's accuracy (with its interval) on the problems of each bin."""
    rows = []
    for o in outcomes:
        values = graded(o)
        for b in sorted(set(bins.values())):
            vals = [v for i, v in values.items() if bins.get(i) == b]
            if vals:
                iv = bootstrap_mean(vals)
                rows.append(BinRow(o.cell.name, kind, b, len(vals), round(iv.point, 4), round(iv.lo, 4), round(iv.hi, 4)))
    return rows
