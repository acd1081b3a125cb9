"""Fitting the head with torch: full-batch AdamW on binary cross-entropy (soft labels for mc),
features standardised on the training rows, problems split whole into training and
validation so no question's samples sit on both sides. Deterministic by seed."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

from ...verifiers.value_model import HeadShape, new_head, probabilities
from .config import Fit
from .metrics import auc, brier, calibration


@dataclass(frozen=True)
class Rows:
    """One row per step prefix: the hidden state at its end and what is known about it."""

    states: Any  # float tensor [rows, hidden]
    labels: Sequence[float]  # the training target
    groups: Sequence[str]  # problem id
    depths: Sequence[int]  # step index, from 0
    last: Sequence[bool]  # the prefix is the whole sample
    outcomes: Sequence[bool]  # the sample's final correctness


def split(groups: Sequence[str], validation: float, seed: int) -> set[str]:
    """The problems held out: a seeded `validation` share of the distinct ids (at least one)."""
    ids = sorted(set(groups))
    random.Random(seed).shuffle(ids)
    return set(ids[: max(1, round(len(ids) * validation))])


def fit(rows: Rows, train: Sequence[bool], shape: HeadShape, cfg: Fit) -> Any:
    import torch

    torch.manual_seed(cfg.seed)
    idx = torch.tensor([i for i, t in enumerate(train) if t])
    if not len(idx):
        raise ValueError("value fit: no training rows (every problem went to validation)")
    x, y = rows.states[idx].float(), torch.tensor([float(rows.labels[i]) for i in idx.tolist()])
    head = new_head(x.shape[1], shape)
    with torch.no_grad():
        head.shift.copy_(x.mean(0))
        head.scale.copy_(x.std(0) + 1e-6)
    opt = torch.optim.AdamW(head.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    head.train()
    for _ in range(cfg.epochs):
        opt.zero_grad()
        loss = loss_fn(head(x), y)
        loss.backward()
        opt.step()
    return head.eval()


def evaluate(head: Any, rows: Rows, chosen: Sequence[bool]) -> dict[str, Any]:
    """AUC of the value of whole samples against their outcome (the final answer), AUC of
    every prefix against its sample's outcome and per step depth, Brier score and calibration
    of the whole samples, over the `chosen` rows."""
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
        "auc_by_depth": {},
    }
    for d in sorted({rows.depths[i] for i in idx}):
        at = [(s, rows.outcomes[i]) for s, i in zip(scores, idx) if rows.depths[i] == d]
        out["auc_by_depth"][d] = {"auc": _safe_auc(at), "rows": len(at)}
    return out


def _safe_auc(pairs: list[tuple[float, bool]]) -> float | None:
    """None where one class is missing (a depth only right samples reach)."""
    labels = [o for _, o in pairs]
    if not pairs or all(labels) or not any(labels):
        return None
    return round(auc([s for s, _ in pairs], labels), 4)
