"""A trace that reports its changes: the source of a solve's node events.

Every strategy builds its tree through `ctx.tree`, so observing the trace reports all of
them alike: a node added (then aborted or finished when its request ended that way), a score
set, a node pruned (`rejected` or `pruned` set, or left out of the result).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..event import EventKind
from .node import Node
from .trace import Trace


class ObservedTrace(Trace):
    """A Trace that reports its changes to `report(kind, node, score)`."""

    def __init__(self, prompt_ids: Sequence[int], report: Callable[[EventKind, Node, float | None], None], *args: Any, **kwargs: Any) -> None:
        self._report = report
        self._pruned: set[int] = set()
        super().__init__(prompt_ids, *args, **kwargs)

    def add(self, *args: Any, **kwargs: Any) -> Node:
        node = super().add(*args, **kwargs)
        self._report("added", node, None)
        if node.finish == "abort":
            self._report("aborted", node, None)
        elif node.finished:
            self._report("finished", node, None)
        return node

    def set(self, node: Node, **attrs: Any) -> None:
        super().set(node, **attrs)
        if attrs.get("score") is not None:
            self._report("scored", node, float(attrs["score"]))  # type: ignore[arg-type]
        if (attrs.get("rejected") or attrs.get("pruned")) and node.id not in self._pruned:
            self._pruned.add(node.id)
            self._report("pruned", node, self.score(node))
