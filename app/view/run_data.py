"""What the viewer reads of a run directory: its summary (as `ponder report` reads it), the
latest record of each problem, and each problem's reasoning tree.

A trace file that is missing or damaged is noted with the reason and its problem is shown
without a tree; only a path that is no run directory at all is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..run.store import RunStore, summarize
from .tree import tree_nodes


@dataclass(frozen=True)
class Damaged:
    """A trace the page could not draw, and why."""

    problem: str
    file: str
    why: str


@dataclass(frozen=True)
class RunView:
    """One run as the page shows it; `summary` None where there is no run summary (the
    requests a server answered)."""

    name: str
    rows: tuple[Mapping[str, Any], ...]
    trees: Mapping[str, list[dict[str, Any]]]
    summary: Mapping[str, Any] | None = None
    damaged: tuple[Damaged, ...] = field(default=())


def row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A results.jsonl record as one line of the problem table."""
    tokens = record.get("tokens") or {}
    return {
        "id": str(record["id"]), "correct": record.get("correct"), "answer": record.get("answer"),
        "reference": record.get("reference"), "generated": tokens.get("generated"), "cached": tokens.get("cached"),
        "verifier_calls": record.get("verifier_calls"), "wall_s": record.get("wall_s"), "error": record.get("error"),
    }


def check_run_dir(path: Path) -> None:
    """ValueError in one line when `path` is not a run directory."""
    if not path.is_dir():
        raise ValueError(f"{path}: not a run directory (no such directory)")
    if not (path / "results.jsonl").is_file():
        raise ValueError(f"{path}: not a run directory (no results.jsonl)")


def read_run(path: Path, summary: Mapping[str, Any] | None = None) -> RunView:
    """The run at `path`; `summary` as `ponder report` read it, else summary.json, else one
    computed from the records (a run that has not finished yet)."""
    check_run_dir(path)
    store = RunStore(path)
    records = store.records()
    if summary is None:
        summary = _summary(path, records)
    trees: dict[str, list[dict[str, Any]]] = {}
    damaged: list[Damaged] = []
    for record in records:
        pid = str(record["id"])
        rel = record.get("trace")
        file = path / rel if rel else store.trace_path(pid)
        try:
            trees[pid] = tree_nodes(json.loads(file.read_text(encoding="utf-8")), failed=bool(record.get("error")))
        except FileNotFoundError:
            if rel or not record.get("error"):  # an errored problem may have no trace at all
                damaged.append(Damaged(pid, str(file), "missing"))
        except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            damaged.append(Damaged(pid, str(file), f"damaged: {why}"))
    return RunView(str(summary.get("name") or path.name), tuple(row(r) for r in records), trees, summary, tuple(damaged))


def _summary(path: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    file = path / "summary.json"
    try:
        return {**json.loads(file.read_text(encoding="utf-8")), "dir": str(path)}
    except (OSError, ValueError):
        strategy = records[0].get("strategy", "?") if records else "?"
        return {**summarize(path.name, str(strategy), records, 0.0), "dir": str(path)}
