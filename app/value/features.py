"""The policy's hidden state at the end of every step prefix of every sample: one pooling
request per sample, batched, kept in the work folder so a re-fit (another head, other
labels, fewer problems) needs no engine and more problems need it only for the new ones."""

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


def cached(path: Path, compute: Callable[[list[int]], list[Any]], key: Sequence[tuple[str, int]]) -> list[Any]:
    """The states of the samples `key` names, in its order. The file keeps every sample's states
    it has seen, so a larger or smaller set of samples reuses them: `compute(missing)` is asked
    only for the positions in `key` the file lacks, and what it returns is added to the file."""
    import torch

    saved: dict[tuple[str, int], Any] = {}
    if path.is_file():
        old = torch.load(path)
        saved = {(str(k[0]), int(k[1])): s for k, s in zip(old["key"], old["states"])}
    wanted = [(str(k[0]), int(k[1])) for k in key]
    missing = [i for i, k in enumerate(wanted) if k not in saved]
    if missing:
        saved.update(zip((wanted[i] for i in missing), compute(missing), strict=True))
        tmp = path.with_suffix(".tmp")
        torch.save({"key": [list(k) for k in saved], "states": list(saved.values())}, tmp)
        tmp.replace(path)
    return [saved[k] for k in wanted]
