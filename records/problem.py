"""A question to answer, as read from a dataset or given by a user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: str | None = None  # the reference, when known
    choices: int = 0  # > 0 for multiple-choice questions (letters A..)
    kind: str = "math"  # math | code | choice
    meta: Mapping[str, Any] = field(default_factory=dict)  # e.g. tests for code problems

    def __post_init__(self) -> None:
        if not self.question:
            raise ValueError(f"problem {self.id!r}: question is empty")
