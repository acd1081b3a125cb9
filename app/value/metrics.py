"""How well values separate right from wrong: ROC AUC, Brier score, calibration bins."""

from __future__ import annotations

from typing import Sequence


def auc(scores: Sequence[float], labels: Sequence[bool | float]) -> float:
    """The probability that a right sample outscores a wrong one, ties counting one half
    (Mann-Whitney U over average ranks); labels above 0.5 count as right."""
    if len(scores) != len(labels):
        raise ValueError(f"auc: {len(scores)} scores against {len(labels)} labels")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for m in range(i, j + 1):
            ranks[order[m]] = (i + j) / 2 + 1
        i = j + 1
    pos = [r for r, y in zip(ranks, labels) if y > 0.5]
    n_pos, n_neg = len(pos), len(scores) - len(pos)
    if not n_pos or not n_neg:
        raise ValueError(f"auc needs right and wrong samples, got {n_pos} right and {n_neg} wrong")
    return (sum(pos) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def brier(scores: Sequence[float], labels: Sequence[bool | float]) -> float:
    return sum((s - float(y)) ** 2 for s, y in zip(scores, labels)) / len(scores)


def calibration(scores: Sequence[float], labels: Sequence[bool | float], bins: int = 10) -> list[dict[str, float]]:
    """Per equal-width bin of predicted value: its mean prediction, the share right, the count."""
    rows = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(s, float(y)) for s, y in zip(scores, labels) if lo <= s < hi or (b == bins - 1 and s == 1.0)]
        if inside:
            rows.append({"predicted": sum(s for s, _ in inside) / len(inside), "observed": sum(y for _, y in inside) / len(inside), "count": len(inside)})
    return rows
