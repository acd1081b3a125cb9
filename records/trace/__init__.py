"""The trace: the reasoning tree of one problem, everything about it in this folder.

- node.py: Node, one generated step, an immutable value (its trajectory's ids assembled on demand);
- trace.py: Trace, the tree itself (a networkx DiGraph of nodes); it only grows, and its nodes'
  attributes (score, flags, times) are what changes; saved as JSON beside a run's results;
- stream.py: StreamedChild, a node arriving delta by delta from a streamed request;
- subtree.py: Subtree, the part of a trace a sub-run builds in, presented as a trace of its own;
- observed.py: ObservedTrace, a trace that reports its changes (a solve's node events).
The protocol strategies see the tree through is `Tree` in runtime/contract.py.

The trace lives in records, below the verifiers, because three layers share it: the runtime
builds it, a scorer annotates its nodes (verifiers/confidence.py) and a Result carries it to
the app, which saves and draws it.
"""

from .node import Node, split_steps
from .stream import StreamedChild
from .trace import Trace

# what strategies, scorers and results name; the runtime imports Subtree and ObservedTrace
# from their modules (observed.py reads records/event.py, which reads the Result)
__all__ = ["Node", "StreamedChild", "Trace", "split_steps"]
