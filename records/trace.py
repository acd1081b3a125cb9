"""The reasoning tree of one problem: a networkx DiGraph whose nodes are steps.

Node 0 is the prompt. Every other node is one generated step; its trajectory is the path
from the root. Nodes carry the token ids of the whole trajectory so a continuation sends
exactly those ids back to the engine.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import networkx as nx

from ..backends.base import Delta, FinishReason


def split_steps(text: str, delimiter: str) -> list[str]:
    """A whole answer cut into its non-empty steps (the whole text when it has none), for
    scoring trajectories that were sampled in one piece."""
    return [s for s in text.split(delimiter) if s.strip()] or [text]


@dataclass(frozen=True)
class Node:
    """A point in the tree; immutable, so strategies can hold and compare them freely."""

    id: int
    parent: int | None
    ids: tuple[int, ...]  # prompt + every generated token on the path
    prompt_len: int
    text: str  # generated text from the root to here
    step: str  # this node's own step text
    depth: int
    finish: FinishReason | None  # None while the trajectory may continue

    @property
    def finished(self) -> bool:
        return self.finish is not None and self.finish != "stop"

    @property
    def generated_ids(self) -> tuple[int, ...]:
        return self.ids[self.prompt_len :]


class Trace:
    def __init__(self, prompt_ids: Sequence[int], prompt_text: str = "") -> None:
        self.graph = nx.DiGraph()
        self.t0 = time.monotonic()  # node times are seconds after this
        self.root = Node(0, None, tuple(prompt_ids), len(prompt_ids), "", "", 0, None)
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
        if prompt_ids is None:
            ids, prompt_len, text = parent.ids + tuple(token_ids), parent.prompt_len, parent.text + step
        else:
            ids, prompt_len, text = tuple(prompt_ids) + tuple(token_ids), len(prompt_ids), step
            attrs["prompt_tokens"] = len(prompt_ids)
        node = Node(len(self._nodes), parent.id, ids, prompt_len, text, step, parent.depth + 1, finish)
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
