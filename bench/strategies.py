"""Strategy benchmark on a fixed, seeded set of easy arithmetic (reasoning-gym chain_sum).

Prints, per strategy, accuracy, generated tokens, verifier calls, wall time, mean per-problem
latency and prefix-cache hit rate; then the side-by-side ratios the papers claim in shape:
a_star vs best_of_n (tokens, verifier calls), early_rejection vs beam_search (tokens),
trim vs plain sampling (tokens, wall time), first_finish vs best_of_n (latency); and beam
search with `solve_many` (asynchronous, no barrier between problems) vs the same strategy
in lockstep (one problem at a time): wall-time ratio, target >= 1.5x. One engine; runs
one after another, never two at once.

Run: .venv/bin/python bench/strategies.py [--problems 50] [--concurrency 16] [--only a,b] [--no-lockstep]
"""

from __future__ import annotations

import argparse
import asyncio
import time

STEP = dict(step_tokens=48, final_tokens=96, max_steps=4)
ROWS = {
    "greedy": ("best_of_n", dict(n=1, temperature=0.0, selection="first", max_tokens=160)),
    "best_of_n": ("best_of_n", dict(n=4, max_tokens=160)),
    "best_of_n_prm": ("best_of_n", dict(n=4, max_tokens=160, selection="weighted")),
    "first_finish": ("first_finish", dict(n=4, max_tokens=160)),
    "beam_search": ("beam_search", dict(n=8, width=4, **STEP)),
    "early_rejection": ("early_rejection", dict(n=8, width=4, tau=16, **STEP)),
    "dvts": ("dvts", dict(n=4, width=2, **STEP)),
    "particle_filtering": ("particle_filtering", dict(particles=4, **STEP)),
    "a_star": ("a_star", dict(k=4, step_tokens=48, final_tokens=96, max_depth=4, max_verifier_calls=24)),
    # the greedy variant (only the best child on the open list) that used to be the default
    "a_star_best": ("a_star", dict(k=4, step_tokens=48, final_tokens=96, max_depth=4, max_verifier_calls=24, push="best")),
    "sampling_long": ("best_of_n", dict(n=1, temperature=0.6, selection="first", max_tokens=384)),
    "trim": ("trim", dict(max_tokens=384, temperature=0.6, final_tokens=64, max_thoughts=4)),
    "deepconf": ("deepconf", dict(n=4, eta=50, window=32, top_k=5, max_tokens=160)),
    "pdr": ("pdr", dict(schedule=[2, 1], max_tokens=160, workspace_tokens=256)),
}


def problems(count: int, seed: int):
    import reasoning_gym

    from ponder.records.problem import Problem

    data = reasoning_gym.create_dataset("chain_sum", size=count, seed=seed, min_terms=2, max_terms=2, min_digits=1, max_digits=2)
    return [Problem(id=f"chain_sum-{i}", question=x["question"], answer=str(x["answer"])) for i, x in enumerate(data)]


async def run(backend, name, config, items, concurrency):
    from ponder.runtime.solver import Solver
    from ponder.strategies.base import make_strategy
    from ponder.verifiers.arithmetic import ArithmeticScorer
    from ponder.verifiers.judge import Judge

    scorer = Judge(backend) if name == "trim" else ArithmeticScorer()
    solver = Solver(backend, make_strategy(name, **config), scorer, seed=1)
    t = time.perf_counter()
    results = await solver.solve_many(items, concurrency=concurrency)
    wall = time.perf_counter() - t
    led = solver.ledger
    return {
        "acc": sum(bool(r.correct) for r in results) / len(results), "tokens": led.generated_tokens,
        "verifier": led.verifier_calls, "wall": wall, "latency": sum(r.ledger.wall_s for r in results) / len(results),
        "hit": led.cached_tokens / max(led.prompt_tokens, 1),
        # share of problems answered by a strategy's fallback (A*: budget spent before a goal was popped)
        "fallback": sum(bool(r.metrics.get("fallback")) for r in results) / len(results),
    }


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--only", default="", help="comma-separated rows (default: all)")
    ap.add_argument("--no-lockstep", action="store_true")
    args = ap.parse_args()

    from ponder.backends.vllm import EngineConfig, VllmBackend

    backend = VllmBackend(EngineConfig(model=args.model))
    items = problems(args.problems, args.seed)
    rows = [r for r in args.only.split(",") if r] or list(ROWS)
    print(f"{len(items)} chain_sum problems (seed {args.seed}), concurrency {args.concurrency}, model {args.model}\n")
    print(f"{'row':20} {'strategy':18} {'acc':>5} {'gen tok':>8} {'verif':>6} {'wall s':>7} {'latency s':>9} {'hit':>5} {'fallbk':>6}")
    got = {}
    for row in rows:
        name, config = ROWS[row]
        m = got[row] = asyncio.run(run(backend, name, config, items, args.concurrency))
        print(f"{row:20} {name:18} {m['acc']:5.2f} {m['tokens']:8d} {m['verifier']:6d} {m['wall']:7.1f} {m['latency']:9.2f} {m['hit']:5.2f} {m['fallback']:6.2f}", flush=True)

    print()
    pairs = [
        ("a_star", "best_of_n_prm", "tokens", "a_star vs best_of_n (weighted by PRM): generated tokens"),
        ("a_star", "best_of_n_prm", "verifier", "a_star vs best_of_n (weighted by PRM): verifier calls"),
        ("a_star_best", "best_of_n_prm", "tokens", "a_star push=best vs best_of_n (weighted by PRM): generated tokens"),
        ("a_star_best", "best_of_n_prm", "verifier", "a_star push=best vs best_of_n (weighted by PRM): verifier calls"),
        ("dvts", "best_of_n_prm", "tokens", "dvts vs best_of_n (weighted by PRM): generated tokens"),
        ("particle_filtering", "best_of_n_prm", "tokens", "particle_filtering vs best_of_n (weighted by PRM): generated tokens"),
        ("early_rejection", "beam_search", "tokens", "early_rejection vs beam_search: generated tokens"),
        ("trim", "sampling_long", "tokens", "trim vs plain sampling: generated tokens"),
        ("trim", "sampling_long", "wall", "trim vs plain sampling: wall time"),
        ("first_finish", "best_of_n", "latency", "first_finish vs best_of_n: mean latency per problem"),
    ]
    for a, b, key, label in pairs:
        if a in got and b in got:
            print(f"{label}: {ratio(got[a][key], got[b][key])} (accuracy {got[a]['acc']:.2f} vs {got[b]['acc']:.2f})")

    if not args.no_lockstep:
        beam = ROWS["beam_search"]
        a = asyncio.run(run(backend, *beam, items, args.concurrency))
        lock = asyncio.run(run(backend, *beam, items, 1))
        print(f"\nbeam_search solve_many (concurrency {args.concurrency}): {a['wall']:.1f} s, {a['tokens']} tokens")
        print(f"beam_search lockstep (one problem at a time):     {lock['wall']:.1f} s, {lock['tokens']} tokens")
        print(f"wall-time ratio lockstep / async: {lock['wall'] / a['wall']:.2f}x  (target >= 1.5x)")
    asyncio.run(backend.close())


if __name__ == "__main__":
    main()
