"""A child node arriving from a streamed request, delta by delta, until it joins the tree."""

from __future__ import annotations

from ...backends.base import Delta, FinishReason
from .node import Node
from .trace import Trace


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
