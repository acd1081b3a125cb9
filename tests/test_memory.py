"""Memory grows linearly: a trajectory's trace costs the same per token at any depth, and a
batch run with a result sink holds no finished problem."""

from __future__ import annotations

import gc
import tracemalloc

from ponder.backends.scripted import ScriptCall, ScriptedBackend
from ponder.records.problem import Problem
from ponder.runtime.context import Context
from ponder.runtime.solver import Solver
from ponder.strategies.base import make_strategy


def counting(call: ScriptCall) -> str:
    """One short step per request, numbered by how many the trajectory already holds."""
    return f"step {call.generated.count(chr(10) * 2)} adds 1.\n\n"


class Forgetful(ScriptedBackend):
    """The scripted engine without its own records (every call, every cached prefix), which
    grow with what it served and would hide the memory of what is measured here."""

    def _remember(self, ids: tuple[int, ...]) -> None:
        pass

    async def generate(self, prompt_ids, sampling):
        out = await super().generate(prompt_ids, sampling)
        self.calls.clear()
        return out


async def trajectory_bytes_per_token(steps: int) -> float:
    """Bytes a trace keeps per generated token after `steps` continuations, each sent from
    the previous step's exact ids: what deleting the trace gives back."""
    backend = Forgetful(counting)
    gc.collect()
    tracemalloc.start()
    try:
        ctx = Context(Problem(id="deep", question="Count."), backend)
        node = ctx.tree.root
        for _ in range(steps):
            (node,) = await ctx.extend(node, ctx.sampling(temperature=0.0, max_tokens=32, stop=("\n\n",)))
        generated = len(node.generated_ids)
        assert node.depth == steps and node.ids[-generated:] == node.generated_ids
        before = tracemalloc.get_traced_memory()[0]
        del ctx, node
        gc.collect()
        kept = before - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return kept / generated


async def test_a_trajectory_costs_the_same_memory_per_token_at_500_steps_as_at_100():
    short, deep = await trajectory_bytes_per_token(100), await trajectory_bytes_per_token(500)
    # every node holding its whole prefix made the deep one cost about 4x per token
    assert deep < 1.25 * short, (short, deep)
