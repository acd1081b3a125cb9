"""Choosing one answer among candidates: majority, weighted majority, best score, first.

Answers are clustered by equivalence (not string equality), so "1,000", "1000" and
"\\boxed{1000}" vote together. The `_async` forms are for callers on the event loop.
"""

from __future__ import annotations

from typing import Generator, Literal, Sequence

from ..records.result import Candidate
from .answer import equivalent, equivalent_async

Selection = Literal["first", "majority", "weighted", "best"]


def clusters(candidates: Sequence[Candidate]) -> list[list[int]]:
    """Groups of candidate indices whose answers are equivalent, in order of first appearance;
    candidates without an answer are left out. Each pair of answers is compared once per call."""
    memo: dict[tuple[str, str], bool] = {}
    steps = _grouping([c.answer for c in candidates])
    try:
        pair = next(steps)
        while True:
            if pair not in memo:
                memo[pair] = equivalent(*pair)
            pair = steps.send(memo[pair])
    except StopIteration as done:
        return done.value


async def clusters_async(candidates: Sequence[Candidate]) -> list[list[int]]:
    """`clusters` for callers on the event loop: math-verify never blocks the loop."""
    memo: dict[tuple[str, str], bool] = {}
    steps = _grouping([c.answer for c in candidates])
    try:
        pair = next(steps)
        while True:
            if pair not in memo:
                memo[pair] = await equivalent_async(*pair)
            pair = steps.send(memo[pair])
    except StopIteration as done:
        return done.value


def _grouping(answers: Sequence[str | None]) -> Generator[tuple[str, str], bool, list[list[int]]]:
    """The clustering, written once for both drivers: yields (answer, representative) pairs and
    is sent whether they are equivalent."""
    groups: list[list[int]] = []
    for i, a in enumerate(answers):
        if not a:
            continue
        for g in groups:
            if (yield (a, answers[g[0]])):
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def select(candidates: Sequence[Candidate], how: Selection) -> Candidate:
    picked = _without_groups(candidates, how)
    return picked if picked is not None else _by_groups(candidates, how, clusters(candidates))


async def select_async(candidates: Sequence[Candidate], how: Selection) -> Candidate:
    picked = _without_groups(candidates, how)
    return picked if picked is not None else _by_groups(candidates, how, await clusters_async(candidates))


def _without_groups(candidates: Sequence[Candidate], how: str) -> Candidate | None:
    if not candidates:
        raise ValueError("select: no candidates")
    if how == "first":
        return candidates[0]
    if how == "best":
        return max(candidates, key=lambda c: (c.score if c.score is not None else float("-inf")))
    if how not in ("majority", "weighted"):
        raise ValueError(f"selection must be first, majority, weighted or best, got {how!r}")
    return None


def _by_groups(candidates: Sequence[Candidate], how: str, groups: list[list[int]]) -> Candidate:
    if not groups:
        return candidates[0]
    if how == "majority":
        weight = lambda g: len(g)  # noqa: E731
    else:
        weight = lambda g: sum(candidates[i].score or 0.0 for i in g)  # noqa: E731
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
