"""`ponder report`: runs side by side, and accuracy against generated tokens as a PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .merge import combine
from .shard import Shard


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
            summary = {**json.loads(f.read_text()), "dir": str(d)}
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
            out[i] = {**combine(members).summary, "name": f"{name} [{len(members)}/{count} shards]", "dir": str(members[0])}
    return out


def table(summaries: list[dict[str, Any]]) -> str:
    head = f"{'run':24} {'strategy':20} {'n':>5} {'acc':>7} {'cover':>7} {'gen tok/prob':>12} {'verif':>7} {'cache hit':>9} {'wall s':>8}"
    rows = [head, "-" * len(head)]
    for s in summaries:
        acc = "-" if s["accuracy"] is None else f"{s['accuracy']:.3f}"
        cover = "-" if s.get("coverage") is None else f"{s['coverage']:.3f}"  # older summaries lack it
        rows.append(
            f"{s['name'][:24]:24} {s['strategy'][:20]:20} {s['problems']:5d} {acc:>7} {cover:>7} {s['generated_per_problem']:12.1f} "
            f"{s['verifier_calls']:7d} {s['cache_hit_rate']:9.2f} {s['wall_s']:8.1f}"
        )
    return "\n".join(rows)


def plot(summaries: list[dict[str, Any]], path: Path) -> Path:
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
        ax.plot(xs, ys, marker="o", label=strategy)
        for s, x, y in zip(runs, xs, ys):
            ax.annotate(s["name"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    covered = [s for s in summaries if s.get("coverage") is not None]
    if covered:  # what a perfect verifier would pick out of the same samples
        ax.scatter([s["generated_per_problem"] for s in covered], [s["coverage"] for s in covered],
                   marker="^", facecolors="none", edgecolors="black", label="coverage (pass@n)")
    ax.set_xscale("log")
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("accuracy")
    ax.set_title("accuracy against compute")
    ax.grid(True, alpha=0.3)
    if by_strategy or covered:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
