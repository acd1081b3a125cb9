"""Reading a result's trace in tests: its nodes by depth, by attribute and by value, its sub-runs
and the tokens its tree holds."""

from __future__ import annotations


def depth_nodes(result, depth):
    g = result.trace.graph
    return [n for n, a in g.nodes(data=True) if a["depth"] == depth and not a.get("lookahead")]


def nodes(r, **match):
    return [(n, a) for n, a in r.trace.graph.nodes(data=True) if all(a.get(k) == v for k, v in match.items())]


def attrs(r, key):
    return [(n, a) for n, a in r.trace.graph.nodes(data=True) if a.get(key)]


def sub_runs(result) -> list[tuple[str, int]]:
    """(strategy, samples) of each sub-run in the trace, in order."""
    g = result.trace.graph
    return [(a["subrun"], g.out_degree(n)) for n, a in sorted(g.nodes(data=True)) if a.get("subrun")]


def generated_in_tree(result) -> int:
    return sum(a["tokens"] for n, a in result.trace.graph.nodes(data=True) if n != 0)
