"""The reasoning tree of one problem: a networkx DiGraph whose nodes are steps.

Node 0 is the prompt. Every other node is one generated step (records/trace/node.py); its
trajectory is the path from the root. Nodes are immutable values and are never removed: the
tree only grows, and what changes is the attributes set on its nodes (score, flags, times).
"""

from __future__ import annotations

import json
import time
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import networkx as nx

from ...backends.base import FinishReason
from .node import Node, Prefixes


class Graph(nx.DiGraph):
    """A DiGraph whose edge and degree views are made afresh on each use. networkx caches them
    on the graph and each holds the graph: a reference cycle, so a finished trace would stay
    in memory until the cyclic collector's rare full pass, and a long batch run would pile up
    finished problems' trees. Without it a tree is freed as soon as its last holder drops it."""


for _view in ("edges", "out_edges", "in_edges", "degree", "in_degree", "out_degree"):
    if isinstance(getattr(nx.DiGraph, _view, None), cached_property):
        setattr(Graph, _view, property(getattr(nx.DiGraph, _view).func))


class Trace:
    def __init__(self, prompt_ids: Sequence[int], prompt_text: str = "") -> None:
        self.graph = Graph()
        self.t0 = time.monotonic()  # node times are seconds after this
        self._prefixes = Prefixes()
        self.root = Node(0, None, (), "", 0, None, tuple(prompt_ids), None, self._prefixes)
        self._nodes = {0: self.root}
        self.graph.add_node(0, step=prompt_text, tokens=len(prompt_ids), depth=0, finish=None, score=None, t_start=0.0, t_end=0.0)

    def add(
        self,
        parent: Node,
        token_ids: Sequence[int],
        step: str,
        finish: FinishReason | None,
        t_start: float,
        prompt_ids: Sequence[int] | None = None,
        t_end: float | None = None,
        **attrs: object,
    ) -> Node:
        """A child of `parent` continuing its ids; with `prompt_ids`, a node generated from a
        fresh prompt instead (refinement rounds), whose trajectory starts there."""
        fresh = None if prompt_ids is None else tuple(prompt_ids)
        if fresh is not None:
            attrs["prompt_tokens"] = len(fresh)
        node = Node(len(self._nodes), parent.id, tuple(token_ids), step, parent.depth + 1, finish, fresh, parent, self._prefixes)
        self._nodes[node.id] = node
        self.graph.add_node(
            node.id, step=step, tokens=len(token_ids), depth=node.depth, finish=finish, score=None,
            t_start=round(t_start - self.t0, 4), t_end=round((t_end or time.monotonic()) - self.t0, 4), **attrs,
        )
        self.graph.add_edge(parent.id, node.id)
        return node

    def set(self, node: Node, **attrs: object) -> None:
        self.graph.nodes[node.id].update(attrs)

    def score(self, node: Node) -> float | None:
        return self.graph.nodes[node.id]["score"]

    def attrs(self, node: Node) -> Mapping[str, Any]:
        """The attributes set on `node`, read-only."""
        return MappingProxyType(self.graph.nodes[node.id])

    def node(self, node_id: int) -> Node:
        return self._nodes[node_id]

    def path(self, node: Node) -> list[Node]:
        out = []
        cur: Node | None = node
        while cur is not None and cur.id != 0:
            out.append(cur)
            cur = self._nodes[cur.parent] if cur.parent is not None else None
        return out[::-1]

    def steps(self, node: Node) -> list[str]:
        """Step texts from the root; a node marked `partial` (a step cut after a few tokens and
        continued later) forms one step with its continuation."""
        out: list[str] = []
        carry = ""
        for n in self.path(node):
            if self.graph.nodes[n.id].get("partial") and n.id != node.id:
                carry += n.step
                continue
            out.append(carry + n.step)
            carry = ""
        return out

    def now(self) -> float:
        return time.monotonic()

    def prune_unused(self, kept: set[int]) -> None:
        """Mark every leaf outside `kept` (the result's candidates) as pruned; one already
        pruned or rejected stays as it is."""
        for node_id in list(self.graph.nodes):
            attrs = self.graph.nodes[node_id]
            if node_id != self.root.id and node_id not in kept and not (attrs.get("pruned") or attrs.get("rejected")) \
                    and not self.graph.out_degree(node_id):
                self.set(self.node(node_id), pruned=True)

    def to_json(self) -> dict:
        return nx.node_link_data(self.graph, edges="edges")

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json()))
