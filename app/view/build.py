"""The report `ponder view` writes: every run's table and plot as `ponder report` makes them,
then each run's problems and trees (page.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

from ..run.report import plot, read_summaries, table
from .page import render
from .run_data import check_run_dir, read_run


def plot_svg(summaries: list[dict[str, Any]]) -> str | None:
    """`ponder report`'s plot as inline SVG; None without matplotlib (the `data` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        svg = plot(summaries, Path(tmp) / "plot.svg").read_text(encoding="utf-8")
    return svg[svg.index("<svg"):]  # the XML prolog and doctype have no place inside HTML


def runs_page(dirs: Sequence[Path]) -> str:
    """The HTML report of the runs in `dirs`; ValueError in one line for a path that is no run."""
    for d in dirs:
        check_run_dir(d)
    runs = [read_run(d, read_summaries([d])[0] if (d / "summary.json").is_file() else None) for d in dirs]
    summaries = [dict(r.summary or {}) for r in runs]
    svg = plot_svg(summaries)
    note = f"{len(runs)} run(s): " + ", ".join(str(d) for d in dirs) + ("" if svg else "; the plot needs matplotlib (pip install 'ponder[data]')")
    return render(runs, "ponder view: " + ", ".join(r.name for r in runs), table(summaries), svg, note)


def write_report(dirs: Sequence[Path], output: Path) -> Path:
    page = runs_page(dirs)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(output)
    return output
