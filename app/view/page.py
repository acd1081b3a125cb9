"""The viewer's HTML: one file holding its script, style, data and figures, so it opens
offline from a double click and asks the network for nothing (its Content-Security-Policy
forbids every fetch).

Trees are the bulk of a run. They travel gzipped and base64-encoded in chunks of about
CHUNK_BYTES of JSON each; the page decompresses a chunk (DecompressionStream) only when one
of its problems is opened, so a large run's page opens as fast as its table can be drawn.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
from importlib import resources
from typing import Any, Sequence

from .run_data import RunView

CHUNK_BYTES = 256 * 1024
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"


def asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no `<` can close it or open a comment."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")


def packed(run: RunView) -> tuple[list[dict[str, Any]], list[str]]:
    """The run's table rows, each naming the chunk its tree is in (None: no tree), and the chunks."""
    rows, chunks, part, size = [], [], {}, 0

    def close() -> None:
        nonlocal part, size
        if part:
            raw = json.dumps(part, separators=(",", ":"), ensure_ascii=False).encode()
            chunks.append(base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii"))
        part, size = {}, 0

    for r in run.rows:
        nodes = run.trees.get(r["id"])
        if nodes is None:
            rows.append({**r, "chunk": None})
            continue
        part[r["id"]] = nodes
        size += sum(len(n["step"]) for n in nodes) + 120 * len(nodes)
        rows.append({**r, "chunk": len(chunks)})
        if size >= CHUNK_BYTES:
            close()
    close()
    return rows, chunks


def render(runs: Sequence[RunView], title: str, report_table: str | None = None, plot_svg: str | None = None,
           note: str = "") -> str:
    """The page for `runs`; `report_table` and `plot_svg` are `ponder report`'s table and plot."""
    data, trees = [], []
    for run in runs:
        rows, chunks = packed(run)
        summary = dict(run.summary) if run.summary is not None else None
        data.append({"name": run.name, "summary": summary, "rows": rows,
                     "damaged": [{"problem": d.problem, "file": d.file, "why": d.why} for d in run.damaged]})
        trees.append(chunks)
    figures = ""
    if report_table is not None:
        figures = (f'<section id="report"><h2>Accuracy against compute</h2>'
                   f'<div class="plot">{plot_svg or ""}</div><pre id="report-table">{html.escape(report_table)}</pre></section>')
    parts = {
        "csp": CSP, "title": html.escape(title), "note": html.escape(note), "css": asset("view.css"), "figures": figures,
        "data": script_json({"title": title, "runs": data}), "trees": script_json(trees), "js": asset("view.js"),
    }
    # one pass: a step text that happens to read "{{js}}" is data, never a place to fill
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], asset("page.html"))
