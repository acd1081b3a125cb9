"""Strategy benchmark on a fixed, seeded set of easy arithmetic (reasoning-gym chain_sum).

Prints, per strategy, accuracy, generated tokens, verifier calls and wall time; then beam search
over the set with `solve_many` (asynchronous, no barrier between problems) vs the same strategy
forced into lockstep (one problem at a time, every beam of a step waiting for the slowest):
wall-time ratio, target >= 1.5x. One engine, runs one after another.

Run: .venv/bin/python bench/strategies.py [--problems 50] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import time

SMALL = dict(step_tokens=48, final_tokens=96, max_steps=4)
STRATEGIES = [
    ("best_of_n", dict(n=1, temperature=0.0, selection="first", max_tokens=160)),
    ("best_of_n", dict(n=4, max_tokens=160)),
    ("first_finish", dict(n=4, max_tokens=160)),
    ("beam_search", dict(n=4, width=2, **SMALL)),
    ("dvts", dict(n=4, width=2, **SMALL)),
    ("particle_filtering", dict(particles=4, **SMALL)),
]


def problems(count: int, seed: int):
    import reasoning_gym

    from ponder.runtime.problem import Problem

    data = reasoning_gym.create_dataset("chain_sum", size=count, seed=seed, min_terms=2, max_terms=2, min_digits=1, max_digits=2)
    return [Problem(id=f"chain_sum-{i}", question=x["question"], answer=str(x["answer"])) for i, x in enumerate(data)]


async def run(backend, name, config, items, concurrency):
    from ponder.runtime.solver import Solver
    from ponder.strategies.base import make_strategy
    from ponder.verifiers.arithmetic import ArithmeticScorer

    solver = Solver(backend, make_strategy(name, **config), ArithmeticScorer(), seed=1)
    t = time.perf_counter()
    results = await solver.solve_many(items, concurrency=concurrency)
    wall = time.perf_counter() - t
    led = solver.ledger
    acc = sum(bool(r.correct) for r in results) / len(results)
    return acc, led.generated_tokens, led.verifier_calls, wall, led.cached_tokens / max(led.prompt_tokens, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    args = ap.parse_args()

    from ponder.backends.vllm import EngineConfig, VllmBackend

    backend = VllmBackend(EngineConfig(model=args.model))
    items = problems(args.problems, args.seed)
    print(f"{len(items)} chain_sum problems (seed {args.seed}), concurrency {args.concurrency}, model {args.model}\n")
    print(f"{'strategy':34} {'acc':>6} {'gen tok':>8} {'verif':>6} {'wall s':>7} {'cache hit':>9}")
    for name, config in STRATEGIES:
        acc, tok, ver, wall, hit = asyncio.run(run(backend, name, config, items, args.concurrency))
        label = f"{name}({', '.join(f'{k}={v}' for k, v in config.items() if k in ('n', 'width', 'particles'))})"
        print(f"{label:34} {acc:6.2f} {tok:8d} {ver:6d} {wall:7.1f} {hit:9.2f}")

    beam = ("beam_search", dict(n=4, width=2, **SMALL))
    _, tok_a, _, async_s, _ = asyncio.run(run(backend, *beam, items, args.concurrency))
    _, tok_l, _, lock_s, _ = asyncio.run(run(backend, *beam, items, 1))
    print(f"\nbeam_search solve_many (concurrency {args.concurrency}): {async_s:.1f} s, {tok_a} tokens")
    print(f"beam_search lockstep (one problem at a time):     {lock_s:.1f} s, {tok_l} tokens")
    print(f"wall-time ratio lockstep / async: {lock_s / async_s:.2f}x  (target >= 1.5x)")
    asyncio.run(backend.close())


if __name__ == "__main__":
    main()
