"""Step labels from the policy's own outcomes, graded by ponder's grader.

`outcome` (AlphaMath's value targets without the search): every step prefix of a sample gets
that sample's final correctness. `mc: K` (Math-Shepherd): K completions are sampled from each
step prefix but the last, and its label is the share that reach the reference answer; the
last prefix is the whole sample, labelled by its own outcome.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ...backends.base import Backend, Sampling
from ...records.problem import Problem
from ...records.trace import split_steps
from ...runtime.prompt import PromptConfig
from ...verifiers.answer import equivalent_async, extract
from ..run.store import RunStore


@dataclass(frozen=True)
class Trajectory:
    """One sample of the policy, cut into steps, graded against the reference."""

    problem_id: str
    question: str
    steps: tuple[str, ...]
    answer: str
    correct: bool


async def grade(problem: Problem, text: str) -> tuple[str, bool]:
    answer = extract(text, problem.choices).text
    return answer, bool(answer) and await equivalent_async(answer, str(problem.answer))


async def read_samples(run_dir: Path, problems: Sequence[Problem], delimiter: str) -> list[Trajectory]:
    """Every sample of a best-of-n run directory, in the problems' order (errored problems
    and problems without a record are left out)."""
    store = RunStore(run_dir)
    records = {str(r["id"]): r for r in store.records() if not r.get("error") and r.get("trace")}
    out = []
    for p in problems:
        record = records.get(p.id)
        if record is None:
            continue
        trace = json.loads((run_dir / record["trace"]).read_text(encoding="utf-8"))
        samples = sorted((n for n in trace["nodes"] if n.get("depth") == 1), key=lambda n: n["id"])
        for node in samples:
            answer, correct = await grade(p, node["step"])
            out.append(Trajectory(p.id, p.question, tuple(split_steps(node["step"], delimiter)), answer, correct))
    return out


def outcome_labels(t: Trajectory) -> list[float]:
    return [float(t.correct)] * len(t.steps)


def mc_share(outcomes: Sequence[bool]) -> float:
    if not outcomes:
        raise ValueError("mc label of no completions: expected K >= 1 outcomes")
    return sum(map(bool, outcomes)) / len(outcomes)


async def mc_labels(
    backend: Backend, prompt: PromptConfig, problem: Problem, t: Trajectory, k: int, temperature: float,
    max_tokens: int, delimiter: str, seed: int,
) -> list[float]:
    """Math-Shepherd's soft labels: the share of `k` completions from each step prefix that
    reach the reference; the whole sample keeps its own outcome."""
    base = prompt.ids(backend.tokenizer, problem)

    async def share(depth: int) -> float:
        prefix = delimiter.join(s.strip() for s in t.steps[: depth + 1]) + delimiter
        sampling = Sampling(n=k, temperature=temperature, max_tokens=max_tokens, seed=seed + depth)
        completions = await backend.generate(base + backend.tokenizer.encode(prefix), sampling)
        return mc_share([(await grade(problem, prefix + c.text))[1] for c in completions])

    shares = await asyncio.gather(*(share(d) for d in range(len(t.steps) - 1)))
    return [*shares, float(t.correct)]


def labels_file(work: Path, mode: str) -> Path:
    return work / f"labels-{mode.replace(':', '')}.jsonl"


def read_labels(path: Path) -> dict[tuple[str, int], list[float]]:
    """Labels computed so far, by (problem id, sample index): a resumed run skips them."""
    done: dict[tuple[str, int], list[float]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row: dict[str, Any] = json.loads(line)
                done[(row["id"], row["sample"])] = row["labels"]
    return done
