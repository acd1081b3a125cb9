"""Fitting the head with torch: full-batch L-BFGS on binary cross-entropy (soft labels for mc)
with a ridge penalty, features standardised on the training rows, questions split whole into
training and validation so no question's samples sit on both sides (small datasets repeat a
question under several problem ids). Deterministic by seed.

Why L-BFGS and a ridge: a few thousand correlated step prefixes from a few hundred problems
overfit a 576-wide head quickly; the penalised logistic fit is convex for the linear head, so
it lands on one optimum whatever the step size, and the penalty is the one knob to tune."""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from ...verifiers.value_model import HeadShape, new_head, probabilities
from ...verifiers.voting import aggregate
from .config import Fit
from .metrics import auc, brier, calibration


@dataclass(frozen=True)
class Rows:
    """One row per step prefix: the hidden state at its end and what is known about it."""

    states: Any  # float tensor [rows, hidden]
    labels: Sequence[float]  # the training target
    groups: Sequence[str]  # the question: problems that repeat one stay on one side of a split
    depths: Sequence[int]  # step index, from 0
    last: Sequence[bool]  # the prefix is the whole sample
    outcomes: Sequence[bool]  # the sample's final correctness


AGGREGATES = ("last", "mean", "min")


def split(groups: Sequence[str], validation: float, seed: int) -> set[str]:
    """The groups (questions) held out: a seeded `validation` share of the distinct ones (at least one)."""
    ids = sorted(set(groups))
    random.Random(seed).shuffle(ids)
    return set(ids[: max(1, round(len(ids) * validation))])


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread for the duration. A multi-threaded matmul sums in an order that
    depends on the thread count, and 200 L-BFGS iterations carry that rounding into the head
    (0.05 in a sample's value between a fit in a process that had started an engine and one
    that had not): on one thread the seed alone decides the head."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@one_thread()
def fit(rows: Rows, train: Sequence[bool], shape: HeadShape, cfg: Fit) -> Any:
    import torch

    torch.manual_seed(cfg.seed)
    idx = torch.tensor([i for i, t in enumerate(train) if t])
    if not len(idx):
        raise ValueError("value fit: no training rows (every question went to validation)")
    x, y = rows.states[idx].float(), torch.tensor([float(rows.labels[i]) for i in idx.tolist()])
    head = new_head(x.shape[1], shape)
    with torch.no_grad():
        head.shift.copy_(x.mean(0))
        head.scale.copy_(x.std(0) + 1e-6)
    weights = [p for name, p in head.net.named_parameters() if name.endswith("weight")]
    opt = torch.optim.LBFGS(list(head.net.parameters()), max_iter=cfg.max_iter, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def closure() -> Any:
        opt.zero_grad()
        loss = loss_fn(head(x), y) + cfg.l2 * sum((w**2).sum() for w in weights) / len(y)
        loss.backward()
        return loss

    head.train()
    opt.step(closure)
    return head.eval()


def evaluate(head: Any, rows: Rows, chosen: Sequence[bool]) -> dict[str, Any]:
    """AUC of the value of whole samples against their outcome (the final answer), and of a
    sample's step values made one by each aggregate a strategy may use; AUC of every prefix
    against its sample's outcome and per step depth; Brier score and calibration of the whole
    samples, over the `chosen` rows."""
    import torch

    idx = [i for i, c in enumerate(chosen) if c]
    scores = probabilities(head, rows.states[torch.tensor(idx)]) if idx else []
    final = [(s, rows.outcomes[i]) for s, i in zip(scores, idx) if rows.last[i]]
    every = [(s, rows.outcomes[i]) for s, i in zip(scores, idx)]
    out: dict[str, Any] = {
        "rows": len(idx), "samples": len(final), "right": sum(o for _, o in final),
        "auc_final": _safe_auc(final), "auc_steps": _safe_auc(every),
        "brier_final": round(brier(*zip(*final)), 4) if final else None,
        "calibration": calibration(*zip(*final)) if final else [],
        "auc_by_aggregate": {how: _safe_auc([(aggregate(v, how), o) for v, o in _per_sample(scores, idx, rows)]) for how in AGGREGATES},
        "auc_by_depth": {},
    }
    for d in sorted({rows.depths[i] for i in idx}):
        at = [(s, rows.outcomes[i]) for s, i in zip(scores, idx) if rows.depths[i] == d]
        out["auc_by_depth"][d] = {"auc": _safe_auc(at), "rows": len(at)}
    return out


def _per_sample(scores: Sequence[float], idx: Sequence[int], rows: Rows) -> list[tuple[list[float], bool]]:
    """The chosen rows regrouped by sample (a sample's prefixes are consecutive rows from depth 0)."""
    out: list[tuple[list[float], bool]] = []
    for s, i in zip(scores, idx):
        if rows.depths[i] == 0:
            out.append(([], rows.outcomes[i]))
        out[-1][0].append(s)
    return out


def _safe_auc(pairs: list[tuple[float, bool]]) -> float | None:
    """None where one class is missing (a depth only right samples reach)."""
    labels = [o for _, o in pairs]
    if not pairs or all(labels) or not any(labels):
        return None
    return round(auc([s for s, _ in pairs], labels), 4)
