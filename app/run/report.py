"""`ponder report`: runs side by side, and accuracy against generated tokens as a PNG; every
accuracy with its 95% bootstrap interval (app/run/stats.py), in the table and as error bars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .merge import combine
from .shard import Shard
from .stats import interval_of, paired_difference, text
from .store import RunStore, summarize


def read_summaries(dirs: list[Path]) -> list[dict[str, Any]]:
    """One summary per run; the shards of one run (same name, same N) become one row, merged
    as `ponder merge` would merge them (and refused alike when they are not one experiment)."""
    out: list[dict[str, Any]] = []
    shards: dict[tuple[str, int], list[Path]] = {}
    for d in dirs:
        f = d / "summary.json"
        if not f.is_file():
            raise ValueError(f"{d}: no summary.json (not a run directory, or the run never started)")
        try:
            summary = with_intervals({**json.loads(f.read_text()), "dir": str(d), "dirs": [str(d)]}, d)
        except json.JSONDecodeError as e:
            raise ValueError(f"{f}: not valid JSON ({e.msg})") from None
        if "shard" in summary:
            key = (summary["name"], Shard.from_json(summary["shard"], f).count)
            if key not in shards:
                out.append({"shards_of": key})  # the merged row takes the first shard's place
            shards.setdefault(key, []).append(d)
        else:
            out.append(summary)
    for i, row in enumerate(out):
        if "shards_of" in row:
            (name, count), members = row["shards_of"], shards[row["shards_of"]]
            out[i] = {**combine(members).summary, "name": f"{name} [{len(members)}/{count} shards]", "dir": str(members[0]),
                      "dirs": [str(m) for m in members]}
    return out


def with_intervals(summary: dict[str, Any], directory: Path) -> dict[str, Any]:
    """A summary written before summaries carried intervals gets them from its results."""
    if "accuracy_lo" in summary or not RunStore(directory).results.is_file():
        return summary
    fresh = summarize(summary["name"], summary["strategy"], RunStore(directory).records(), 0.0)
    return {**summary, **{k: v for k, v in fresh.items() if k.startswith(("accuracy", "coverage"))}}


def table(summaries: list[dict[str, Any]]) -> str:
    """One row per run; accuracy and coverage with their 95% bootstrap intervals."""
    head = (f"{'run':24} {'strategy':20} {'n':>5} {'accuracy [95% CI]':>20} {'coverage [95% CI]':>20} "
            f"{'gen tok/prob':>12} {'verif':>7} {'cache hit':>9} {'wall s':>8}")
    rows = [head, "-" * len(head)]
    for s in summaries:
        rows.append(
            f"{s['name'][:24]:24} {s['strategy'][:20]:20} {s['problems']:5d} {text(s):>20} {text(s, 'coverage'):>20} "
            f"{s['generated_per_problem']:12.1f} {s['verifier_calls']:7d} {s['cache_hit_rate']:9.2f} {s['wall_s']:8.1f}"
        )
    return "\n".join(rows)


def outcomes(summary: dict[str, Any]) -> dict[str, bool]:
    """Each graded problem's outcome by id, from the run's results (all its shards' for a merged row)."""
    out: dict[str, bool] = {}
    for d in summary["dirs"]:
        for record in RunStore(Path(d)).records():
            if record["correct"] is not None:
                out[str(record["id"])] = bool(record["correct"])
    return out


def paired(summaries: list[dict[str, Any]]) -> list[str]:
    """Every run against the first, on the problems both graded: the paired bootstrap of the
    difference in accuracy, far narrower than the two intervals side by side suggest."""
    base = outcomes(summaries[0]) if len(summaries) > 1 else {}
    if not base:
        return []
    lines = [f"against {summaries[0]['name']}, problem by problem (paired 95% CI):"]
    for s in summaries[1:]:
        other = outcomes(s)
        shared = sorted(base.keys() & other.keys())
        if not shared:
            lines.append(f"  {s['name']}: no graded problem in common")
            continue
        d = paired_difference([other[i] for i in shared], [base[i] for i in shared])
        lines.append(f"  {s['name']}: {d.point:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}] on {len(shared)} problems")
    return lines


def _bars(summaries: list[dict[str, Any]], name: str) -> tuple[list[float], list[float]]:
    """Matplotlib's asymmetric error bars (below, above) for `name`; none where a summary lacks them."""
    ivs = [interval_of(s, name) for s in summaries]
    below = [0.0 if iv is None else iv.point - iv.lo for iv in ivs]
    above = [0.0 if iv is None else iv.hi - iv.point for iv in ivs]
    return below, above


def plot(summaries: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig = figure(summaries)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def figure(summaries: list[dict[str, Any]]) -> Any:
    """Accuracy against generated tokens per problem, a line per strategy, each point with its
    95% interval as an error bar; coverage (pass@n) as open triangles."""
    import matplotlib

    matplotlib.use("Agg")  # no display; write the file only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    by_strategy: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        if s["accuracy"] is not None:
            by_strategy.setdefault(s["strategy"], []).append(s)
    for strategy, runs in sorted(by_strategy.items()):
        runs.sort(key=lambda s: s["generated_per_problem"])
        xs, ys = [s["generated_per_problem"] for s in runs], [s["accuracy"] for s in runs]
        ax.errorbar(xs, ys, yerr=_bars(runs, "accuracy"), marker="o", capsize=3, label=strategy)
        for s, x, y in zip(runs, xs, ys):
            ax.annotate(s["name"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    covered = [s for s in summaries if s.get("coverage") is not None]
    if covered:  # what a perfect verifier would pick out of the same samples
        # drawn a little to the right of its run's point, so the two error bars do not overlap
        ax.errorbar([s["generated_per_problem"] * 1.04 for s in covered], [s["coverage"] for s in covered], yerr=_bars(covered, "coverage"),
                    fmt="^", mfc="none", color="black", capsize=2, elinewidth=0.6, label="coverage (pass@n)")
    ax.set_xscale("log")
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("accuracy (bars: 95% interval)")
    ax.set_title("accuracy against compute")
    ax.grid(True, alpha=0.3)
    if by_strategy or covered:
        ax.legend()
    fig.tight_layout()
    return fig
