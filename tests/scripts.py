"""Scripts and scorers for deterministic strategy tests on the scripted backend."""

from __future__ import annotations

import asyncio
import time
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


def enc(text: str) -> list[int]:
    """The scripted tokenizer's ids for `text`: one per character."""
    return [ord(c) for c in text]


def endless(call: ScriptCall) -> str:
    """Thinks without end; once thinking is closed for it, finishes the boxed answer."""
    if "</think>" in call.generated:
        return "4} because two and two make four, as everyone knows."
    return "hmm " * 400


class LoopLag:
    """Measures how late a 10 ms ticker wakes while the block runs: the event loop's lag.
    `async with LoopLag() as lag: ...`, then `lag.worst` (seconds) and `lag.ticks`."""

    async def __aenter__(self) -> "LoopLag":
        self.lags: list[float] = []
        self._task = asyncio.create_task(self._tick())
        return self

    async def _tick(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            self.lags.append(time.monotonic() - t - 0.01)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0.05)  # a ticker woken late reports it when it next runs
        self._task.cancel()

    @property
    def worst(self) -> float:
        return max(self.lags)

    @property
    def ticks(self) -> int:
        return len(self.lags)
