"""Benchmark of MCTS and adaptive consistency on the chain_sum set of bench/strategies.py.

Rows, on one engine, one after another:
- beam_search (the bench/strategies.py row) and mcts (W=4) given beam search's mean generated
  tokens per problem as its hard token budget: accuracy, tokens, wall time;
- mcts W=1 against W=4 at the same budget on the first `--w-problems` problems at a lower
  problem concurrency (so the batch is not already filled by other problems): wall time and
  mean per-problem latency;
- best_of_n majority at n = max_n against adaptive_consistency (waves of 4 up to max_n), same
  temperature: samples and tokens saved, accuracy;
- beam_search scored by the policy's own confidence (self-certainty, no verifier) against the
  same beam search scored by the arithmetic scorer and against best_of_n majority (the
  bench/strategies.py rows): accuracy, tokens, engine requests, verifier calls.

Run: .venv/bin/python bench/strategies3.py [--problems 20] [--concurrency 16] [--w-problems 8] [--w-concurrency 4] [--max-n 16]
     [--rows mcts,adaptive,confidence]

Measured (`bench/strategies3.py --problems 20`, smollm2-135m-instruct on the 2-core CPU engine,
shared machine, 11 min in all):
    beam_search (N=8, M=4)      acc 0.10  13145 tokens  380 verifier calls  72.3 s
    mcts W=4 (budget 657/pb)    acc 0.10  10865 tokens  492 verifier calls  73.4 s  (0.83x tokens)
    mcts W=4 / W=1, 8 problems at concurrency 4: 44.7 s / 45.7 s wall, 20.2 s / 18.4 s latency
    best_of_n n=16 majority     acc 0.20  320 samples  34612 tokens  173.5 s
    adaptive max_n=16           acc 0.20  316 samples (2 aborted)  33898 tokens  209.8 s
On the CPU engine a fuller batch costs about as much per token as the requests one after
another, so W=4 gains no wall time there; the 135M model's answers rarely agree, so the
vote is seldom decided and adaptive consistency draws nearly all max_n samples.

Measured (`bench/strategies3.py --problems 20 --rows confidence`, same engine and machine, 5 min):
    beam_search (N=8, M=4), confidence   acc 0.05  11558 tokens  340 requests    0 verifier calls   94.3 s
    beam_search (N=8, M=4), arithmetic   acc 0.10  12756 tokens  380 requests  380 verifier calls  101.1 s
    best_of_n n=4 majority               acc 0.05   7847 tokens   80 requests    0 verifier calls   64.4 s
The confidence scorer costs no request and no verifier call (its requests are its samples;
beam search's paths, not its scoring, differ); one problem in 20 apart, on a model this weak
the accuracies are within noise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from strategies import ROWS, STEP, problems, ratio, run  # noqa: E402  (bench/strategies.py)

MCTS = dict(k=4, step_tokens=STEP["step_tokens"], final_tokens=STEP["final_tokens"], max_depth=STEP["max_steps"], simulations=64)


async def votes(backend, name, config, items, concurrency, scorer=None):
    """Accuracy, samples drawn (requests' samples), engine requests, verifier calls and
    generated tokens of a strategy (a voting one, or one scored by `scorer`)."""
    from ponder.runtime.solver import Solver
    from ponder.strategies.base import make_strategy

    solver = Solver(backend, make_strategy(name, **config), scorer, seed=1)
    t = time.perf_counter()
    results = await solver.solve_many(items, concurrency=concurrency)
    wall = time.perf_counter() - t
    samples = sum(r.metrics.get("launched", len(r.candidates)) for r in results)
    return {
        "acc": sum(bool(r.correct) for r in results) / len(results), "tokens": solver.ledger.generated_tokens,
        "samples": samples, "aborted": solver.ledger.aborted_requests, "wall": wall,
        "requests": solver.ledger.requests, "verifier": solver.ledger.verifier_calls,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--w-problems", type=int, default=8)
    ap.add_argument("--w-concurrency", type=int, default=4)
    ap.add_argument("--max-n", type=int, default=16)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--rows", default="mcts,adaptive,confidence", help="comma-separated groups of rows")
    args = ap.parse_args()
    rows = set(args.rows.split(","))

    from ponder.backends.vllm import EngineConfig, VllmBackend

    backend = VllmBackend(EngineConfig(model=args.model))
    items = problems(args.problems, args.seed)
    print(f"{len(items)} chain_sum problems (seed {args.seed}), model {args.model}\n")
    if "confidence" in rows:
        confidence_rows(backend, items, args.concurrency)
    if "mcts" in rows:
        mcts_rows(backend, items, args)
    if "adaptive" in rows:
        adaptive_rows(backend, items, args)
    asyncio.run(backend.close())


def confidence_rows(backend, items, concurrency) -> None:
    from ponder.verifiers.arithmetic import ArithmeticScorer
    from ponder.verifiers.confidence import ConfidenceScorer

    print(f"{'row':26} {'acc':>5} {'gen tok':>8} {'requests':>8} {'verif':>6} {'wall s':>7}")
    out = {}
    for row, (name, config), scorer in (
        ("beam_search confidence", ROWS["beam_search"], ConfidenceScorer()),
        ("beam_search arithmetic", ROWS["beam_search"], ArithmeticScorer()),
        ("best_of_n majority", ROWS["best_of_n"], None),
    ):
        out[row] = m = asyncio.run(votes(backend, name, config, items, concurrency, scorer))
        print(f"{row:26} {m['acc']:5.2f} {m['tokens']:8d} {m['requests']:8d} {m['verifier']:6d} {m['wall']:7.1f}")
    conf, arith = out["beam_search confidence"], out["beam_search arithmetic"]
    print(f"confidence vs arithmetic scorer: accuracy {conf['acc']:.2f} vs {arith['acc']:.2f}, tokens {ratio(conf['tokens'], arith['tokens'])}, "
          f"requests {ratio(conf['requests'], arith['requests'])}, verifier calls {conf['verifier']} vs {arith['verifier']}\n")


def mcts_rows(backend, items, args) -> None:
    print(f"{'row':22} {'conc':>4} {'acc':>5} {'gen tok':>8} {'verif':>6} {'wall s':>7} {'latency s':>9}")

    def show(row, conc, m):
        print(f"{row:22} {conc:4d} {m['acc']:5.2f} {m['tokens']:8d} {m['verifier']:6d} {m['wall']:7.1f} {m['latency']:9.2f}")

    beam = asyncio.run(run(backend, *ROWS["beam_search"], items, args.concurrency))
    show("beam_search", args.concurrency, beam)
    budget = max(1, beam["tokens"] // len(items))
    mcts = {}
    for w, conc, some in ((4, args.concurrency, items), (4, args.w_concurrency, items[: args.w_problems]), (1, args.w_concurrency, items[: args.w_problems])):
        mcts[w, conc] = m = asyncio.run(run(backend, "mcts", dict(MCTS, parallel=w, max_tokens=budget), some, conc))
        show(f"mcts W={w} ({len(some)} pb)", conc, m)
    top = mcts[4, args.concurrency]
    print(f"\nmcts vs beam_search at {budget} tokens per problem: accuracy {top['acc']:.2f} vs {beam['acc']:.2f}, "
          f"tokens {ratio(top['tokens'], beam['tokens'])}, wall {ratio(top['wall'], beam['wall'])}")
    w1, w4 = mcts[1, args.w_concurrency], mcts[4, args.w_concurrency]
    print(f"mcts W=1 / W=4 ({args.w_problems} problems, concurrency {args.w_concurrency}): wall {ratio(w1['wall'], w4['wall'])}, "
          f"latency {ratio(w1['latency'], w4['latency'])} (accuracy {w1['acc']:.2f} vs {w4['acc']:.2f})\n")


def adaptive_rows(backend, items, args) -> None:
    bon = asyncio.run(votes(backend, "best_of_n", dict(n=args.max_n, max_tokens=160), items, args.concurrency))
    ada = asyncio.run(votes(backend, "adaptive_consistency", dict(wave=4, max_n=args.max_n, max_tokens=160), items, args.concurrency))
    print(f"{'row':22} {'acc':>5} {'samples':>8} {'aborted':>8} {'gen tok':>8} {'wall s':>7}")
    for row, m in ((f"best_of_n n={args.max_n}", bon), (f"adaptive max_n={args.max_n}", ada)):
        print(f"{row:22} {m['acc']:5.2f} {m['samples']:8d} {m['aborted']:8d} {m['tokens']:8d} {m['wall']:7.1f}")
    print(f"adaptive vs best_of_n: samples {ratio(ada['samples'], bon['samples'])}, tokens {ratio(ada['tokens'], bon['tokens'])}, "
          f"accuracy {ada['acc']:.2f} vs {bon['acc']:.2f}")


if __name__ == "__main__":
    main()
