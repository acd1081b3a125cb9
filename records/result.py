"""What a strategy returns for one problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .ledger_summary import LedgerSummary
from .trace import Trace


@dataclass(frozen=True)
class Candidate:
    text: str
    answer: str  # extracted
    score: float | None = None
    finish: str | None = None
    tokens: int = 0
    node: int | None = None  # id in the trace


@dataclass(frozen=True)
class Result:
    problem_id: str
    strategy: str
    answer: str
    text: str
    candidates: tuple[Candidate, ...]
    ledger: LedgerSummary
    trace: Trace = field(repr=False, compare=False)
    metrics: Mapping[str, float] = field(default_factory=dict)  # strategy-specific, e.g. pass@k, B_seq
    correct: bool | None = None  # set when the problem has a reference
    error: str | None = None  # "ExceptionType: message" when solving this problem failed
