"""One thing that happened while a problem was solved, as the runtime reports it.

Events come from the runtime (the context and its trace), never from a strategy, so every
strategy reports the same way: a node was added to the tree, scored, pruned (dropped by the
strategy), aborted (its request cut short) or finished (its trajectory ended); the last
event of a solve is "done" and carries the Result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .ledger_summary import LedgerSummary
from .result import Result

EventKind = Literal["added", "scored", "pruned", "aborted", "finished", "done"]


@dataclass(frozen=True)
class Event:
    kind: EventKind
    problem_id: str
    node: int | None = None  # trace node id; None for "done"
    parent: int | None = None
    step: str = ""  # the node's own step text
    score: float | None = None  # the node's score when known
    finish: str | None = None  # the node's finish reason when known
    ledger: LedgerSummary = field(default_factory=LedgerSummary)  # the problem's totals at this moment
    result: Result | None = None  # set on "done"
