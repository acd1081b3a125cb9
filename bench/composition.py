"""Benchmark of a cascade against each of its stages alone, on the chain_sum set of bench/strategies.py.

Rows, on one engine, one after another: best_of_n (n=4, majority) alone, beam_search (N=8,
M=4, arithmetic scorer) alone, and the cascade of the two (stop after best_of_n when at least
`--threshold` of its 4 answers agree, else run the beam search): accuracy, generated tokens,
verifier calls, wall time, and for the cascade the share of problems that stopped at stage 1.
A second beam_search row with another solver seed shows how far the figures move with the
seeds alone (the cascade's stages draw seeds of their own).

Run: .venv/bin/python bench/composition.py [--problems 24] [--concurrency 16] [--threshold 0.75]

Measured (`bench/composition.py --problems 20 --concurrency 20`, smollm2-135m-instruct on the
2-core CPU engine, 4 min; token counts repeated exactly in a second run):
    best_of_n n=4 majority      acc 0.05   7847 tokens    0 verifier calls   34.0 s
    beam_search N=8, M=4        acc 0.10  12756 tokens  380 verifier calls   55.5 s
    cascade (threshold 0.75)    acc 0.05  26659 tokens  560 verifier calls  107.9 s  (0 of 20 stopped at stage 1)
The 135M model's four answers never agreed on 3 of 4, so every problem escalated and the
cascade cost both stages; its beam stage spent 1.47x the tokens and verifier calls of beam
search alone (same prompts and settings, other seeds): the seed-2 row measures how much of
that the seeds explain (not yet measured).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from strategies import STEP, problems, ratio  # noqa: E402  (bench/strategies.py)

STAGES = {
    "best_of_n": {"name": "best_of_n", "config": {"n": 4, "max_tokens": 160}},
    "beam_search": {"name": "beam_search", "config": {"n": 8, "width": 4, **STEP}},
}


async def measure(backend, name, config, items, concurrency, seed=1):
    from ponder.runtime.solver import Solver
    from ponder.strategies.base import make_strategy
    from ponder.verifiers.arithmetic import ArithmeticScorer

    solver = Solver(backend, make_strategy(name, **config), ArithmeticScorer(), seed=seed)
    t = time.perf_counter()
    results = await solver.solve_many(items, concurrency=concurrency)
    wall = time.perf_counter() - t
    return {
        "acc": sum(bool(r.correct) for r in results) / len(results), "tokens": solver.ledger.generated_tokens,
        "verifier": solver.ledger.verifier_calls, "wall": wall,
        "stage1": sum(r.metrics.get("stage") == 1 for r in results) / len(results),
        "errors": sum(r.error is not None for r in results),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=24)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--threshold", type=float, default=0.75)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    args = ap.parse_args()

    from ponder.backends.vllm import EngineConfig, VllmBackend

    backend = VllmBackend(EngineConfig(model=args.model))
    items = problems(args.problems, args.seed)
    print(f"{len(items)} chain_sum problems (seed {args.seed}), concurrency {args.concurrency}, model {args.model}\n")
    print(f"{'row':28} {'acc':>5} {'gen tok':>8} {'verif':>6} {'wall s':>7} {'stage 1':>7} {'errors':>6}")
    rows = {name: (spec["name"], spec["config"]) for name, spec in STAGES.items()}
    rows[f"cascade (threshold {args.threshold})"] = ("cascade", {"stages": list(STAGES.values()), "threshold": args.threshold})
    rows["beam_search (seed 2)"] = rows["beam_search"]
    got = {}
    for row, (name, config) in rows.items():
        m = got[row] = asyncio.run(measure(backend, name, config, items, args.concurrency, 2 if "seed 2" in row else 1))
        print(f"{row:28} {m['acc']:5.2f} {m['tokens']:8d} {m['verifier']:6d} {m['wall']:7.1f} {m['stage1']:7.2f} {m['errors']:6d}", flush=True)
    cascade, first, second = got[list(rows)[2]], got["best_of_n"], got["beam_search"]
    print(f"\ncascade vs beam_search alone: tokens {ratio(cascade['tokens'], second['tokens'])}, "
          f"verifier calls {ratio(cascade['verifier'], second['verifier'])}, accuracy {cascade['acc']:.2f} vs {second['acc']:.2f}")
    print(f"cascade vs best_of_n alone: tokens {ratio(cascade['tokens'], first['tokens'])}, accuracy {cascade['acc']:.2f} vs {first['acc']:.2f}")
    asyncio.run(backend.close())


if __name__ == "__main__":
    main()
