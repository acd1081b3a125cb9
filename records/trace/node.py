"""A node of the reasoning tree: one generated step, an immutable value.

A node stores only its own step and a link to its parent, so a trajectory of d steps costs
O(d) memory; the token ids a continuation sends back to the engine are assembled from the
path when a request asks for them (through a small cache of recent prefixes, Prefixes).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import chain

from ...backends.base import FinishReason


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
