"""The reasoning tree of one problem: a networkx DiGraph whose nodes are steps.

Node 0 is the prompt. Every other node is one generated step; its trajectory is the path
from the root. A node stores only its own step and a link to its parent, so a trajectory of
d steps costs O(d) memory; the token ids a continuation sends back to the engine are
assembled from the path when a request asks for them.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import networkx as nx

from ..backends.base import Delta, FinishReason


def split_steps(text: str, delimiter: str) -> list[str]:
    """A whole answer cut into its non-empty steps (the whole text when it has none), for
    scoring trajectories that were sampled in one piece."""
    return [s for s in text.split(delimiter) if s.strip()] or [text]


@dataclass(frozen=True, slots=True)
class Node:
    """A point in the tree; immutable, so strategies can hold and compare them freely.

    A trajectory starts at the root or at a node sampled from a fresh prompt (`prompt` set);
    `ids`, `text` and `generated_ids` are that trajectory, assembled on demand by walking up
    the `up` links (O(path) per call: read them once per use, not in a tight loop)."""

    id: int
    parent: int | None
    tokens: tuple[int, ...]  # this step's generated token ids
    step: str  # this step's text
    depth: int
    finish: FinishReason | None  # None while the trajectory may continue
    prompt: tuple[int, ...] | None = None  # where a trajectory starts: the root, or a fresh prompt
    up: Node | None = field(default=None, compare=False, repr=False)
    prefixes: Prefixes | None = field(default=None, compare=False, repr=False)

    @property
    def finished(self) -> bool:
        return self.finish is not None and self.finish != "stop"

    @property
    def ids(self) -> tuple[int, ...]:
        """Prompt + every generated token on the path: exactly what a continuation sends."""
        if self.prompt is not None and not self.tokens:
            return self.prompt
        if self.prefixes is not None:
            return self.prefixes.ids(self)
        return _assemble(self, None)

    @property
    def prompt_len(self) -> int:
        start = _start(self)
        return len(start.prompt) if start.prompt is not None else 0

    @property
    def generated_ids(self) -> tuple[int, ...]:
        return tuple(chain.from_iterable(n.tokens for n in _trajectory(self)))

    @property
    def text(self) -> str:
        """Generated text from the trajectory's start to here."""
        return "".join(n.step for n in _trajectory(self))


def _start(node: Node) -> Node:
    cur = node
    while cur.prompt is None and cur.up is not None:
        cur = cur.up
    return cur


def _trajectory(node: Node) -> list[Node]:
    """The nodes from the trajectory's start to `node`, in order."""
    out = [node]
    while out[-1].prompt is None and out[-1].up is not None:
        out.append(out[-1].up)  # type: ignore[arg-type]
    return out[::-1]


def _assemble(node: Node, held: dict[int, tuple[int, ...]] | None) -> tuple[int, ...]:
    """The trajectory's ids, stopping the walk at the nearest ancestor in `held`."""
    parts = [node.tokens]
    cur = node
    while cur.prompt is None and cur.up is not None:
        cur = cur.up
        found = held.get(cur.id) if held is not None else None
        if found is not None:
            parts.append(found)
            break
        parts.append(cur.tokens)
    else:
        if cur.prompt is not None:
            parts.append(cur.prompt)
    return tuple(chain.from_iterable(reversed(parts)))


class Prefixes:
    """The assembled ids of the last few nodes a request was sent from. A search usually
    continues a child of one of them next, so its ids cost one concatenation instead of a walk
    to the root, and a stream that reads its prefix several times builds it once. The bound
    is a count of entries, each at most one trajectory, so a trace stays linear in its tokens
    (caching every node's prefix is what made it quadratic)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._held: OrderedDict[int, tuple[int, ...]] = OrderedDict()

    def ids(self, node: Node) -> tuple[int, ...]:
        ids = self._held.get(node.id)
        if ids is None:
            ids = self._held[node.id] = _assemble(node, self._held)
            if len(self._held) > self.size:
                self._held.popitem(last=False)
        else:
            self._held.move_to_end(node.id)
        return ids


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


class StreamedChild:
    """A child of `parent` arriving delta by delta: its tokens, text and per-token top
    logprobs so far, and the moment its last delta came. A stream that is left early has no
    finish and becomes an `abort` node; one whose last delta arrived keeps its own finish,
    even if the task reading it is cancelled afterwards."""

    def __init__(self, trace: Trace, parent: Node) -> None:
        self.trace, self.parent = trace, parent
        self.ids: list[int] = []
        self.text = ""
        self.tops: list[tuple[float, ...]] = []
        self.finish: FinishReason | None = None
        self.t_start = trace.now()
        self.t_end: float | None = None

    def add(self, d: Delta) -> None:
        self.ids.extend(d.token_ids)
        self.text += d.text
        self.tops.extend(d.top_logprobs or ())
        if d.finish_reason is not None:
            self.finish, self.t_end = d.finish_reason, self.trace.now()

    def node(self, finish: FinishReason | None = None, **attrs: object) -> Node:
        """The node in the trace; `finish` overrides the stream's own (a stream cut on purpose)."""
        return self.trace.add(self.parent, self.ids, self.text, finish or self.finish or "abort", self.t_start, t_end=self.t_end, **attrs)
