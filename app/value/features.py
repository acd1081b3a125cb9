"""The policy's hidden state at the end of every step prefix of every sample: one pooling
request per sample, batched, kept in the work folder so a re-fit (another head, other
labels) needs no engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ...verifiers.hidden_states import HiddenStates
from ...verifiers.value_model import ValueSpec, layout
from .labels import Trajectory


def step_states(
    states: HiddenStates, tokenizer: Any, spec: ValueSpec, samples: Sequence[Trajectory], batch: int,
    max_len: int, on_batch: Callable[[int], None] | None = None,
) -> list[Any]:
    """Per sample, a tensor [steps, hidden]: the state at the last token of each step prefix."""
    out: list[Any] = []
    for at in range(0, len(samples), batch):
        laid = [layout(tokenizer, spec, t.question, t.steps) for t in samples[at: at + batch]]
        for (ids, _), t in zip(laid, samples[at: at + batch]):
            if len(ids) > max_len:
                raise ValueError(f"problem {t.problem_id}: a sample of {len(ids)} tokens exceeds features.max_model_len {max_len}")
        rows = states.read([ids for ids, _ in laid])
        out += [r[ends].clone() for r, (_, ends) in zip(rows, laid)]
        if on_batch:
            on_batch(len(laid))
    return out


def cached(path: Path, compute: Callable[[], list[Any]], key: Sequence[tuple[str, int]]) -> list[Any]:
    """`compute()` once per set of samples: the file holds the states and the keys they are for."""
    import torch

    if path.is_file():
        saved = torch.load(path)
        if saved["key"] == [list(k) for k in key]:
            return saved["states"]
    states = compute()
    tmp = path.with_suffix(".tmp")
    torch.save({"key": [list(k) for k in key], "states": states}, tmp)
    tmp.replace(path)
    return states
