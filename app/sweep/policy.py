"""The compute-optimal table fitted on the fitting half of the problems, and its measurement on
the held-out half against the best single cell.

Per predicted level (app/sweep/difficulty.py) and budget, the chosen cell is the most accurate
on the fitting problems of that level among those whose cost there, the wave included, stays
within the budget (ties: the cheaper). Only cells that differ from the sampling cell in their
strategy alone are candidates: the compute_optimal strategy runs them as sub-runs under one
run's scorer, prompt and budgets. `wave` (answer with the wave's vote) is always a candidate.
A best-of-n majority cell at the wave's setting with n > w keeps the wave's samples, as the
strategy does: its accuracy on a problem is the exact expectation of a vote over the wave and
n - w more of the run's other samples, its cost the wave's tokens times n / w.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ...strategies.compute_optimal import WAVE, Allocation, Policy, extra_samples
from ...runtime.strategy import StrategySpec
from ..run.run_config import RunConfig, StrategySection
from ..run.stats import Interval, bootstrap_mean, paired_difference
from .difficulty import Wave, is_fit
from .outcomes import Outcome
from .plan import Cell
from .subsample import Votes, majority_at_k
from .summary import graded


def same_but_strategy(a: RunConfig, b: RunConfig) -> bool:
    strip = lambda c: {k: v for k, v in c.model_dump(mode="json").items() if k not in ("name", "strategy")}  # noqa: E731
    return strip(a) == strip(b)


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def fit(sampler: Outcome, outcomes: Sequence[Outcome], waves: dict[str, Wave], budgets: Sequence[float], w: int) -> Policy:
    """The table, from the fitting problems only."""
    ids = [i for i in waves if is_fit(i)]
    if not ids:
        raise ValueError("no fitting problems with a first wave: the sweep needs more problems")
    wave_spec = StrategySpec(name="best_of_n", config={**sampler.cell.config.strategy.config, "n": w})
    candidates = [o for o in outcomes if same_but_strategy(o.cell.config, sampler.cell.config)]
    specs = {o.cell.name: StrategySpec(name=o.cell.config.strategy.name, config=o.cell.config.strategy.config) for o in candidates}
    run = {str(r["id"]): r for r in sampler.records}
    wave_cost = {i: float(run[i]["tokens"]["generated"]) * waves[i].share for i in ids}
    values: dict[str, dict[str, float]] = {}
    costs: dict[str, dict[str, float]] = {}
    for o in candidates:
        extra = extra_samples(wave_spec, specs[o.cell.name])
        if extra is None:  # run after the wave, on samples of its own
            values[o.cell.name] = graded(o)
            costs[o.cell.name] = {str(r["id"]): wave_cost.get(str(r["id"]), 0.0) + float(r["tokens"]["generated"]) for r in o.records}
        else:  # the wave's samples kept, `extra` more drawn from the rest of the run's
            values[o.cell.name] = {i: majority_at_k(Votes.of(run[i]["candidates"], run[i]["reference"], keep=w), extra) for i in ids}
            costs[o.cell.name] = {i: wave_cost[i] * (w + extra) / w for i in ids}

    def options(group: list[str]) -> list[tuple[float, float, str]]:
        """(accuracy, cost with the wave, cell) on `group`, the wave alone first."""
        out = [(_mean([waves[i].right for i in group]), _mean([wave_cost[i] for i in group]), WAVE)]
        for name in values:
            if all(i in values[name] and i in costs[name] for i in group):
                out.append((_mean([values[name][i] for i in group]), _mean([costs[name][i] for i in group]), name))
        return out

    def best(group: list[str], budget: float) -> str:
        within = [o for o in options(group) if o[1] <= budget] or [min(options(group), key=lambda o: o[1])]
        return max(within, key=lambda o: (o[0], -o[1]))[2]

    levels = sorted({waves[i].level for i in ids})
    budgets = sorted(set(budgets)) or sorted({round(o[1]) for o in options(ids)})
    table = [
        Allocation(tokens=b, choice={lv: best([i for i in ids if waves[i].level == lv], b) for lv in levels}, default=best(ids, b))
        for b in budgets if b > 0
    ]
    return Policy(wave=wave_spec, cells=specs, budgets=table)


def write_policy(policy: Policy, path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(policy.model_dump_json(indent=2))
    tmp.replace(path)
    return path


def optimal_config(sampler: Cell, policy_path: Path, budget: float, directory: Path) -> RunConfig:
    """The run of compute_optimal at `budget`: the sampling cell's config with the strategy swapped."""
    strategy = StrategySection(name="compute_optimal", config={"policy": str(policy_path.resolve()), "budget": budget})
    return sampler.config.model_copy(update={"name": f"compute_optimal-{budget:g}", "output_dir": str(directory), "strategy": strategy})


@dataclass(frozen=True)
class Comparison:
    """compute_optimal on the held-out problems against the best single cell that spends no more."""

    run: str
    tokens: float
    accuracy: Interval
    rival: str
    rival_tokens: float
    rival_accuracy: Interval
    difference: Interval  # paired: compute_optimal - rival, same problems
    matching: str  # the cheapest cell at least as accurate ("" when none is)
    matching_tokens: float | None

    def line(self) -> str:
        match = (f"; the cheapest cell as accurate, {self.matching}, spends {self.matching_tokens:.0f} tokens "
                 f"({self.matching_tokens / self.tokens:.2f}x)") if self.matching and self.matching_tokens else "; no single cell is as accurate"
        return (f"{self.run}: {self.accuracy} at {self.tokens:.0f} tokens/problem; best single cell within that, {self.rival}: "
                f"{self.rival_accuracy} at {self.rival_tokens:.0f}; paired difference {self.difference}{match}")


def compare(optimal: Outcome, cells: Sequence[Outcome]) -> Comparison | None:
    mine = graded(optimal)
    held = list(mine)
    if not held:
        return None
    def spend(o: Outcome) -> float:
        per = {str(r["id"]): float(r["tokens"]["generated"]) for r in o.records}
        return _mean([per[i] for i in held if i in per])
    tokens = spend(optimal)
    rows = []
    for o in cells:
        v = graded(o)
        if all(i in v for i in held):
            rows.append((o, _mean([v[i] for i in held]), spend(o)))
    within = [r for r in rows if r[2] <= tokens * 1.0000001]
    if not within:
        return None
    rival, _, rival_tokens = max(within, key=lambda r: (r[1], -r[2]))
    acc = bootstrap_mean([mine[i] for i in held])
    rv = graded(rival)
    as_good = sorted((r for r in rows if r[1] >= acc.point), key=lambda r: r[2])
    return Comparison(
        optimal.cell.name, tokens, acc, rival.cell.name, rival_tokens, bootstrap_mean([rv[i] for i in held]),
        paired_difference([mine[i] for i in held], [rv[i] for i in held]),
        as_good[0][0].cell.name if as_good else "", as_good[0][2] if as_good else None,
    )
