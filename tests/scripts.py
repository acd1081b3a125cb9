"""Scripts and scorers for deterministic strategy tests on the scripted backend."""

from __future__ import annotations

from typing import Sequence

from ponder.backends.scripted import ScriptCall, ScriptedBackend
from ponder.records.problem import Problem


def stepwise(call: ScriptCall) -> str:
    """Three steps, each 'good' or 'bad' by the sample's seed, then a boxed answer and EOS."""
    depth = call.generated.count("\n\n")
    if depth >= 3:
        return "So the answer is \\boxed{7}."
    kind = "good" if (call.seed or 0) % 2 == 0 else "bad"
    return f"{kind} step {depth} seed {call.seed}.\n\n"


class KeywordScorer:
    """PRM stand-in: a step scores 0.9 if it says 'good', else 0.1."""

    def __init__(self) -> None:
        self.calls = 0

    async def score(self, problem: Problem, steps: Sequence[str]) -> list[float]:
        self.calls += 1
        return [0.9 if "good" in s else 0.1 for s in steps]


def backend(script=stepwise, delay: float = 0.0) -> ScriptedBackend:
    return ScriptedBackend(script, token_delay_s=delay)
