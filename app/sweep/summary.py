"""One row per cell: accuracy with its 95% bootstrap interval, what it spent, and its paired
difference from the sweep's first cell; written as summary.csv and shown as a table."""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from ..run.stats import Interval, bootstrap_mean, paired_difference
from .flops import Compute
from .outcomes import Outcome


@dataclass(frozen=True)
class Row:
    cell: str
    strategy: str
    series: str  # cells differing only in the last grid axis (a line in the plot)
    source: str
    problems: int
    accuracy: float | None
    acc_lo: float | None
    acc_hi: float | None
    coverage: float | None  # mean pass@k where the strategy reports it
    gen_tokens_per_problem: float
    verifier_calls: float
    engine_requests: float  # the policy's requests (one per sample)
    wall_s: float  # the run's wall time (a derived cell: k/n of its run's)
    cache_hit_rate: float
    flops_per_problem: float | None
    vs: str  # the cell the paired difference is taken against
    diff: float | None
    diff_lo: float | None
    diff_hi: float | None


def graded(outcome: Outcome) -> dict[str, float]:
    """Problem id -> outcome (1/0, or a derived cell's expected accuracy), graded problems only."""
    return {str(r["id"]): float(r["correct"]) for r in outcome.records if r["correct"] is not None}


def interval(values: Sequence[float]) -> Interval | None:
    return bootstrap_mean(values) if values else None


def paired(a: dict[str, float], b: dict[str, float]) -> Interval | None:
    """mean(a - b) over the problems both answered, resampled as pairs."""
    common = [i for i in a if i in b]
    return paired_difference([a[i] for i in common], [b[i] for i in common]) if common else None


def coverage(records: Sequence[dict[str, Any]]) -> float | None:
    per = []
    for r in records:
        ks = {int(k[5:]): v for k, v in r.get("metrics", {}).items() if k.startswith("pass@")}
        if not ks:
            return None
        per.append(ks[max(ks)])
    return round(sum(per) / len(per), 4) if per else None


def make_row(outcome: Outcome, baseline: Outcome | None) -> Row:
    recs = outcome.records
    n = len(recs) or 1
    values = graded(outcome)
    acc = interval(list(values.values()))
    diff = paired(values, graded(baseline)) if baseline is not None and baseline is not outcome else None
    prompt = sum(r["tokens"]["prompt"] for r in recs)
    cached = sum(r["tokens"]["cached"] for r in recs)
    flops = [Compute.of(outcome.cell.config).flops(r) for r in recs]
    known = [f for f in flops if f is not None]
    r4 = lambda x: None if x is None else round(x, 4)  # noqa: E731
    return Row(
        cell=outcome.cell.name, strategy=outcome.cell.config.strategy.name, series=outcome.cell.series or outcome.cell.name,
        source=outcome.source, problems=len(recs),
        accuracy=r4(acc.point if acc else None), acc_lo=r4(acc.lo if acc else None), acc_hi=r4(acc.hi if acc else None),
        coverage=coverage(recs), gen_tokens_per_problem=round(sum(r["tokens"]["generated"] for r in recs) / n, 1),
        verifier_calls=round(sum(r["verifier_calls"] for r in recs), 1), engine_requests=round(sum(r["requests"] for r in recs), 1),
        wall_s=round(outcome.elapsed if outcome.elapsed is not None else sum(r["wall_s"] for r in recs), 2), cache_hit_rate=round(cached / prompt, 4) if prompt else 0.0,
        flops_per_problem=float(f"{sum(known) / n:.4g}") if recs and len(known) == len(recs) else None,
        vs=baseline.cell.name if diff is not None and baseline is not None else "",
        diff=r4(diff.point if diff else None), diff_lo=r4(diff.lo if diff else None), diff_hi=r4(diff.hi if diff else None),
    )


def make_rows(outcomes: Sequence[Outcome]) -> list[Row]:
    """Rows in cell order; differences are paired against the first cell."""
    return [make_row(o, outcomes[0] if outcomes else None) for o in outcomes]


def write_csv(rows: Sequence[Row], path: Path) -> Path:
    """summary.csv, replaced whole (never half-written)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(Row.__dataclass_fields__))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in asdict(row).items()})
    os.replace(tmp, path)
    return path


def table(rows: Sequence[Row]) -> str:
    """The terminal table: accuracy [interval], cost, and the paired difference; `how` says
    whether a cell ran or was subsampled from a larger run."""
    head = f"{'cell':28} {'how':>4} {'n':>4} {'accuracy [95% CI]':>22} {'gen tok/prob':>12} {'verif':>7} {'FLOPs/prob':>10} {'vs first cell [95% CI]':>24}"
    lines = [head, "-" * len(head)]
    for r in rows:
        acc = "-" if r.accuracy is None else f"{r.accuracy:.3f} [{r.acc_lo:.3f}, {r.acc_hi:.3f}]"
        diff = "-" if r.diff is None else f"{r.diff:+.3f} [{r.diff_lo:+.3f}, {r.diff_hi:+.3f}]"
        flops = "-" if r.flops_per_problem is None else f"{r.flops_per_problem:.2e}"
        how = "sub" if r.source.startswith("subsampled") else "run"
        lines.append(f"{r.cell[:28]:28} {how:>4} {r.problems:4d} {acc:>22} {r.gen_tokens_per_problem:12.1f} {r.verifier_calls:7.0f} {flops:>10} {diff:>24}")
    return "\n".join(lines)
