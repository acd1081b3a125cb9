"""Choosing one answer among candidates: majority, weighted majority, best score, first.

Answers are clustered by equivalence (not string equality), so "1,000", "1000" and
"\\boxed{1000}" vote together.
"""

from __future__ import annotations

from typing import Literal, Sequence

from ..records.result import Candidate
from .answer import equivalent

Selection = Literal["first", "majority", "weighted", "best"]


def clusters(candidates: Sequence[Candidate]) -> list[list[int]]:
    """Groups of candidate indices whose answers are equivalent, in order of first appearance;
    candidates without an answer are left out."""
    groups: list[list[int]] = []
    for i, c in enumerate(candidates):
        if not c.answer:
            continue
        for g in groups:
            if equivalent(c.answer, candidates[g[0]].answer):
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def select(candidates: Sequence[Candidate], how: Selection) -> Candidate:
    if not candidates:
        raise ValueError("select: no candidates")
    if how == "first":
        return candidates[0]
    if how == "best":
        return max(candidates, key=lambda c: (c.score if c.score is not None else float("-inf")))
    groups = clusters(candidates)
    if not groups:
        return candidates[0]
    if how == "majority":
        weight = lambda g: len(g)  # noqa: E731
    elif how == "weighted":
        weight = lambda g: sum(candidates[i].score or 0.0 for i in g)  # noqa: E731
    else:
        raise ValueError(f"selection must be first, majority, weighted or best, got {how!r}")
    top = max(groups, key=weight)  # max keeps the first group on ties: earliest wins
    return max((candidates[i] for i in top), key=lambda c: c.score or 0.0) if how == "weighted" else candidates[top[0]]


def aggregate(scores: Sequence[float], how: str = "last") -> float:
    """A trajectory's PRM score from its step scores."""
    if not scores:
        return 0.0
    if how == "last":
        return scores[-1]
    if how == "min":
        return min(scores)
    if how == "mean":
        return sum(scores) / len(scores)
    if how == "prod":
        p = 1.0
        for s in scores:
            p *= s
        return p
    raise ValueError(f"aggregate must be last, min, mean or prod, got {how!r}")
