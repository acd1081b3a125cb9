"""frontier.png: accuracy against generated tokens per problem (log x), each cell with its 95%
interval, and the Pareto frontier (the cells no cheaper cell beats) joined by a line."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .summary import Row


def pareto(rows: Sequence[Row]) -> list[Row]:
    """The cells for which no other cell is at most as dear and more accurate, cheapest first."""
    scored = sorted((r for r in rows if r.accuracy is not None), key=lambda r: (r.gen_tokens_per_problem, -r.accuracy))  # type: ignore[operator]
    out: list[Row] = []
    for r in scored:
        if not out or r.accuracy > out[-1].accuracy:  # type: ignore[operator]
            out.append(r)
    return out


def plot(rows: Sequence[Row], path: Path, title: str, extra: Sequence[Row] = ()) -> Path:
    """`rows` on the same problems (the frontier is theirs); `extra` drawn apart (compute_optimal
    on the held-out problems only)."""
    import matplotlib

    matplotlib.use("Agg")  # no display; write the file only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    by_series: dict[str, list[Row]] = {}
    for r in rows:
        if r.accuracy is not None and r.gen_tokens_per_problem > 0:
            by_series.setdefault(r.series, []).append(r)
    for series, group in by_series.items():
        group = sorted(group, key=lambda r: r.gen_tokens_per_problem)
        xs = [r.gen_tokens_per_problem for r in group]
        ys = [r.accuracy for r in group]
        err = [[r.accuracy - r.acc_lo for r in group], [r.acc_hi - r.accuracy for r in group]]  # type: ignore[operator]
        ax.errorbar(xs, ys, yerr=err, fmt="o-" if len(group) > 1 else "o", capsize=3, alpha=0.8, label=series)
        for r, x, y in zip(group, xs, ys):
            ax.annotate(r.cell.removeprefix(series).lstrip("-") or r.cell, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=6)
    front = [r for r in pareto(rows) if r.gen_tokens_per_problem > 0]
    if front:
        ax.plot([r.gen_tokens_per_problem for r in front], [r.accuracy for r in front], "k--", lw=1, label="Pareto frontier")
    for r in extra:
        if r.accuracy is not None and r.gen_tokens_per_problem > 0:
            ax.errorbar([r.gen_tokens_per_problem], [r.accuracy], yerr=[[r.accuracy - r.acc_lo], [r.acc_hi - r.accuracy]],  # type: ignore[operator]
                        fmt="*", ms=10, capsize=3, label=f"{r.cell} (held-out)")
    ax.set_xscale("log")
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("accuracy (95% bootstrap interval)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if by_series or extra:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
