"""Strategy benchmark on a fixed, seeded set of easy arithmetic (reasoning-gym chain_sum).

Prints, per strategy, accuracy, generated tokens, verifier calls, wall time, mean per-problem
latency and prefix-cache hit rate; then the side-by-side ratios the papers claim in shape:
a_star vs best_of_n (tokens, verifier calls), early_rejection vs beam_search (tokens),
trim vs plain sampling (tokens, wall time), first_finish vs best_of_n (latency); and beam
search with `solve_many` (asynchronous, no barrier between problems) vs the same strategy
in lockstep (one problem at a time): wall-time ratio, target >= 1.5x. One engine; runs
one after another, never two at once.

Utilisation: a row's generated tokens per second divided by the engine's own rate in the same
run, on the same engine, with as many plain sampling requests in flight as the row can have
(concurrency x its samples per request), each as long as one of the row's requests and sent
back to back: what the engine gives when nothing but sampling waits on it. `inflight` is the
mean number of engine requests held while the row ran, `full` the share of its wall time with
at least max_num_seqs requests held (a full running batch). Wide search: beam_search at N=64
against best_of_n at n=64 on the same problems, wall time per generated token (target <= 1.5x).

Run: .venv/bin/python bench/strategies.py [--problems 50] [--concurrency 16] [--only a,b] [--no-lockstep]
     [--wide 1] [--repeat 1] [--timeline]
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


class Occupancy:
    """Engine requests held, sampled every `every` s while a row runs (mean, share full), and
    the CPU time this process (strategy, client side of the engine) and its children (the
    engine) used per second of wall time."""

    def __init__(self, backend, full: int, every: float = 0.05) -> None:
        self.backend, self.full, self.every, self.samples = backend, full, every, []

    @staticmethod
    def _cpu() -> tuple[float, float, float]:
        import psutil

        me = psutil.Process()
        kids = 0.0
        for child in me.children(recursive=True):
            try:
                t = child.cpu_times()
                kids += t.user + t.system
            except psutil.Error:
                pass
        t = me.cpu_times()
        return time.perf_counter(), t.user + t.system, kids

    async def __aenter__(self):
        self._t0 = self._cpu()
        self._task = asyncio.create_task(self._watch())
        return self

    def cpu(self) -> tuple[float, float]:
        """(this process, the engine's processes): CPU seconds per wall second."""
        (w0, a0, b0), (w1, a1, b1) = self._t0, self._t1
        return (a1 - a0) / (w1 - w0), (b1 - b0) / (w1 - w0)

    async def _watch(self) -> None:
        while True:
            self.samples.append(self.backend.unfinished_requests())
            await asyncio.sleep(self.every)

    async def __aexit__(self, *exc) -> None:
        self._t1 = self._cpu()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def mean(self) -> float:
        return sum(self.samples) / max(len(self.samples), 1)

    def share_full(self) -> float:
        return sum(x >= self.full for x in self.samples) / max(len(self.samples), 1)

    def timeline(self, parts: int = 10) -> str:
        """Mean requests held in each tenth of the run: dips mid-run are waits inside the
        strategy, a falling end is the tail of the last problems."""
        n = len(self.samples)
        cuts = [self.samples[i * n // parts : (i + 1) * n // parts] for i in range(parts)]
        return " ".join(f"{sum(c) / max(len(c), 1):.0f}" for c in cuts)


async def run(backend, name, config, items, concurrency):
    from ponder.runtime.solver import Solver
    from ponder.strategies.base import make_strategy
    from ponder.verifiers.arithmetic import ArithmeticScorer
    from ponder.verifiers.judge import Judge

    scorer = Judge(backend) if name == "trim" else ArithmeticScorer()
    solver = Solver(backend, make_strategy(name, **config), scorer, seed=1)
    async with Occupancy(backend, backend.config.max_num_seqs) as occ:
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
        # prompt tokens the engine computed (not read from the prefix cache) per generated token
        "prefill": (led.prompt_tokens - led.cached_tokens) / max(led.generated_tokens, 1),
        "rate": led.generated_tokens / wall, "inflight": occ.mean(), "full": occ.share_full(), "cpu": occ.cpu(),
        "timeline": occ.timeline(),
    }


def shape(config: dict) -> tuple[int, int]:
    """(samples per request, tokens per request) of a row: what its engine rate is measured with."""
    width = config.get("n") or config.get("particles") or config.get("k") or 1
    return width, config.get("step_tokens") or config.get("max_tokens", 160)


async def engine_rate(backend, items, inflight: int, max_tokens: int, rounds: int = 1) -> float:
    """Generated tokens/s of `inflight` plain sampling requests kept in flight (each sends
    `rounds` requests back to back) on the problems' prompts: the engine's own rate."""
    from ponder.backends.base import Sampling
    from ponder.runtime.prompt import PromptConfig

    prompts = [PromptConfig().ids(backend.tokenizer, p) for p in items]

    async def loop(i: int) -> int:
        got = 0
        for r in range(rounds):
            s = Sampling(temperature=0.8, max_tokens=max_tokens, seed=10_000 + i * rounds + r)
            (c,) = await backend.generate(prompts[i % len(prompts)], s)
            got += len(c.token_ids)
        return got

    t = time.perf_counter()
    tokens = sum(await asyncio.gather(*(loop(i) for i in range(inflight))))
    return tokens / (time.perf_counter() - t)


class Rates:
    """The engine's rate per (requests in flight, tokens per request), measured once per run."""

    def __init__(self, backend, items, concurrency: int) -> None:
        self.backend, self.items, self.concurrency, self.known = backend, items, concurrency, {}

    def of(self, config: dict) -> float:
        width, tokens = shape(config)
        # as many problems as can run at once: fewer problems than the concurrency hold fewer requests
        key = (min(self.concurrency, len(self.items)) * width, tokens)
        if key not in self.known:
            self.known[key] = asyncio.run(engine_rate(self.backend, self.items, *key))
        return self.known[key]


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
    ap.add_argument("--wide", type=int, default=1, help="problems for the N=64 line (0: skip it)")
    ap.add_argument("--timeline", action="store_true", help="requests held per tenth of each row's run")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each row (spread over runs)")
    args = ap.parse_args()

    from ponder.backends.vllm import EngineConfig, VllmBackend

    backend = VllmBackend(EngineConfig(model=args.model))
    items = problems(args.problems, args.seed)
    rows = [r for r in args.only.split(",") if r] or list(ROWS)
    print(f"{len(items)} chain_sum problems (seed {args.seed}), concurrency {args.concurrency}, model {args.model}\n")
    asyncio.run(engine_rate(backend, items[:4], 4, 8, rounds=1))  # warm-up
    rates = Rates(backend, items, args.concurrency)
    print(f"{'row':20} {'strategy':18} {'acc':>5} {'gen tok':>8} {'verif':>6} {'wall s':>7} {'latency s':>9} {'hit':>5} {'fallbk':>6} {'tok/s':>6} {'engine':>6} {'util':>5} {'inflight':>8} {'full':>5} {'cpu':>9}")
    got = {}
    for row in rows:
        name, config = ROWS[row]
        for _ in range(args.repeat):
            m = got[row] = asyncio.run(run(backend, name, config, items, args.concurrency))
            m["engine"] = rates.of(config)
            print(f"{row:20} {name:18} {m['acc']:5.2f} {m['tokens']:8d} {m['verifier']:6d} {m['wall']:7.1f} {m['latency']:9.2f} {m['hit']:5.2f} {m['fallback']:6.2f}"
                  f" {m['rate']:6.1f} {m['engine']:6.1f} {m['rate'] / m['engine']:5.2f} {m['inflight']:8.1f} {m['full']:5.2f} {m['cpu'][0]:4.2f}/{m['cpu'][1]:4.2f}", flush=True)
            if args.timeline:
                print(f"{'':20} requests held per tenth of the run: {m['timeline']}")

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

    if args.wide:
        wide = items[: args.wide]
        for _ in range(args.repeat):
            beam = asyncio.run(run(backend, "beam_search", dict(ROWS["beam_search"][1], n=64), wide, args.wide))
            bon = asyncio.run(run(backend, "best_of_n", dict(n=64, max_tokens=160), wide, args.wide))
            per = lambda m: m["wall"] / max(m["tokens"], 1)  # noqa: E731
            print(f"\nwide, {len(wide)} problems: beam_search N=64 {beam['tokens']} tokens in {beam['wall']:.1f} s (inflight {beam['inflight']:.1f});"
                  f" best_of_n n=64 {bon['tokens']} tokens in {bon['wall']:.1f} s (inflight {bon['inflight']:.1f})")
            print(f"wall time per generated token, beam_search N=64 / best_of_n n=64: {per(beam) / per(bon):.2f}x  (target <= 1.5x)", flush=True)

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
