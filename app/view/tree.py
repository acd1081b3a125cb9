"""A trace file (records/trace/trace.py's JSON) as the viewer draws it: one entry per node, its parent,
and the marks the page shows (chosen path, finished, pruned, aborted, errored, sub-run).

The marks are decided here, once, so the page and the tests read the same answer.
"""

from __future__ import annotations

from typing import Any, Mapping

# node attributes with a place of their own in the view; the rest are shown as they are
SHOWN = {"id", "step", "tokens", "cached_tokens", "score", "finish", "t_start", "t_end", "depth", "subrun", "chosen", "pruned", "rejected"}
MARKS = ("chosen", "finished", "pruned", "aborted", "errored")


def tree_nodes(trace: Any, failed: bool = False) -> list[dict[str, Any]]:
    """The nodes of a saved trace (its parsed JSON), in id order. `failed`: the problem ended in an error, so an
    open leaf (one that neither finished nor was pruned) is where the error stopped it.

    Raises ValueError when the JSON is not a trace (no node list, an edge to an unknown node)."""
    if not isinstance(trace, dict):
        raise ValueError("not a trace: expected a JSON object")
    raw = trace.get("nodes")
    edges = trace.get("edges", trace.get("links", []))
    if not isinstance(raw, list) or not isinstance(edges, list):
        raise ValueError("not a trace: expected `nodes` and `edges` lists")
    by_id: dict[int, Mapping[str, Any]] = {}
    for n in raw:
        if not isinstance(n, dict) or not isinstance(n.get("id"), int):
            raise ValueError("not a trace: a node without an integer id")
        by_id[n["id"]] = n
    parent: dict[int, int] = {}
    for e in edges:
        src, dst = (e.get("source"), e.get("target")) if isinstance(e, dict) else (None, None)
        if src not in by_id or dst not in by_id:
            raise ValueError(f"not a trace: edge {e!r} names an unknown node")
        parent[dst] = src
    children = {i: 0 for i in by_id}
    for dst, src in parent.items():
        children[src] += 1
    on_path: set[int] = set()
    for i, n in by_id.items():
        if n.get("chosen"):
            cur: int | None = i
            while cur is not None and cur not in on_path:
                on_path.add(cur)
                cur = parent.get(cur)
    out = []
    for i in sorted(by_id):
        n = by_id[i]
        finish = n.get("finish")
        pruned = bool(n.get("pruned") or n.get("rejected"))
        marks = {
            "chosen": i in on_path, "finished": finish in ("eos", "length"), "pruned": pruned, "aborted": finish == "abort",
            "errored": failed and not children[i] and finish not in ("eos", "length") and not pruned,
        }
        out.append({
            "id": i, "parent": parent.get(i), "step": n.get("step") or "", "tokens": n.get("tokens", 0),
            "cached": n.get("cached_tokens"), "score": n.get("score"), "finish": finish,
            "t_start": n.get("t_start"), "t_end": n.get("t_end"), "subrun": n.get("subrun"),
            "marks": [m for m in MARKS if marks[m]],
            "extra": {k: v for k, v in n.items() if k not in SHOWN},
        })
    return out
