"""What a sub-run builds in: a subtree of its parent problem's one trace.

A strategy treats `ctx.tree.root` as the start of everything it builds. A sub-run's root is a
marker node under its parent's root, presented at depth 0, so depth limits, paths and step
lists mean the same inside a sub-run as at the top, while every node lands in (and is reported
by) the problem's trace.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import networkx as nx

from .node import Node
from .trace import Trace


class Subtree:
    """The nodes under `root` in `outer` (a trace or another subtree), presented as a trace:
    `root` at depth 0, paths and steps stop there, `graph` a live view of these nodes only.
    Nodes are added through `outer`, so every enclosing subtree sees them as its own."""

    def __init__(self, outer: Trace | Subtree, marker: Node) -> None:
        self.outer = outer
        self.root = replace(marker, depth=0)
        self.t0 = outer.t0
        self._members = {marker.id}
        self.graph = nx.subgraph_view(outer.graph, filter_node=self._members.__contains__)

    def add(self, parent: Node, *args: Any, **kwargs: Any) -> Node:
        node = self.outer.add(parent, *args, **kwargs)
        self._members.add(node.id)
        return node

    def set(self, node: Node, **attrs: object) -> None:
        self.outer.set(node, **attrs)

    def score(self, node: Node) -> float | None:
        return self.outer.score(node)

    def attrs(self, node: Node) -> Mapping[str, Any]:
        return self.outer.attrs(node)

    def node(self, node_id: int) -> Node:
        return self.root if node_id == self.root.id else self.outer.node(node_id)

    def now(self) -> float:
        return self.outer.now()

    def path(self, node: Node) -> list[Node]:
        out = []
        cur = node
        while cur.id != self.root.id:
            out.append(cur)
            cur = self.node(cur.parent)  # type: ignore[arg-type]
        return out[::-1]

    steps = Trace.steps  # the same rules on this subtree's paths and leaves
    prune_unused = Trace.prune_unused

    def to_json(self) -> dict:
        return nx.node_link_data(self.graph, edges="edges")

    def save(self, path: Path) -> None:
        Trace.save(self, path)  # type: ignore[arg-type]
