"""Benchmark of Dynasor-CoT's mechanics on the embedded model: tokens saved and requests made
against the same streams unprobed, and what the probes cost in tokens and wall time.

Two rows on one engine, one after another, on the same problems (chain_sum of bench/strategies.py)
with `<think>` opening the assistant turn and the same seeds:
- unprobed: dynasor with its probes off (a probe interval past max_tokens): every stream runs to
  its end. Probes are greedy and draw no seed, so both rows sample the same streams;
- dynasor: a probe every --interval thinking tokens, stopping a stream at --window agreeing probes.
Per row: the streams' generated tokens, probe requests and tokens, the probes' prompt tokens
computed and served from the prefix cache, requests, wall time. `same` counts the streams whose
probed text is a prefix of the same stream unprobed (the check that the rows share their samples).
The pair is run --repeats times (token counts repeat exactly; wall time spreads).

Run: .venv/bin/python bench/thinking.py [--problems 8] [--streams 2] [--max-tokens 192] [--repeats 2]

Measured (`bench/thinking.py --problems 8 --streams 2 --max-tokens 192 --repeats 2`, smollm2-135m-instruct
on the 2-core CPU engine, a loaded machine; token counts repeated exactly in the second pass):
    unprobed   2281 stream tokens, 16 requests, wall 29.2 s / 65.0 s
    dynasor    1786 stream tokens + 650 probe tokens (48 probes), 64 requests, wall 63.4 s / 145.4 s
    8 of 16 streams stopped early; 16/16 probed streams are prefixes of the same streams unprobed
Stream tokens saved 21.7%, but all tokens (probes included) 1.07x the unprobed; requests 4.00x;
81.7% of the probes' prompt tokens came from the prefix cache; wall 2.17x and 2.24x (mean 2.20x).
The 135M model's probe answers are not its answers (accuracy 0/8 probed against 1/8 unprobed:
noise at this size, and no claim either way): these rows measure the mechanics only. With probes
of 20 tokens every 32 thinking tokens on 192-token streams a probe costs about as much as it
saves; on the GPU recipe's 16k-token traces (configs/aime24_thinking_dynasor.yaml) the same
overhead is spread over 500 probe points per stream.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from strategies import problems, ratio  # noqa: E402  (bench/strategies.py)


async def measure(backend, items, config, concurrency):
    from ponder.runtime.prompt import PromptConfig
    from ponder.runtime.solver import Solver
    from ponder.runtime.thinking import ThinkingConfig
    from ponder.strategies.base import make_strategy

    solver = Solver(backend, make_strategy("dynasor", **config), prompt=PromptConfig(thinking=ThinkingConfig(prefill=True)), seed=1)
    t = time.perf_counter()
    results = await solver.solve_many(items, concurrency=concurrency)
    wall = time.perf_counter() - t
    led = solver.ledger
    probe_prompt = probe_cached = 0
    streams = {}
    for r in results:
        for _, a in r.trace.graph.nodes(data=True):
            if a.get("probe"):
                probe_prompt += a["prompt_tokens"]
                probe_cached += a["cached_tokens"]
            elif "stream" in a:
                streams[(r.problem_id, a["stream"])] = a["step"]
    return {
        "stream_tokens": led.generated_tokens - led.probe_tokens, "probe_tokens": led.probe_tokens,
        "probe_requests": led.probe_requests, "requests": led.requests, "probe_prompt": probe_prompt,
        "probe_cached": probe_cached, "wall": wall, "acc": sum(bool(r.correct) for r in results) / len(results),
        "early": sum(r.metrics["early_exits"] for r in results), "streams": streams,
        "errors": sum(r.error is not None for r in results),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--streams", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=192)
    ap.add_argument("--interval", type=int, default=32)
    ap.add_argument("--probe-tokens", type=int, default=20)
    ap.add_argument("--window", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    args = ap.parse_args()

    from ponder.backends.vllm import EngineConfig, VllmBackend

    backend = VllmBackend(EngineConfig(model=args.model))
    items = problems(args.problems, args.seed)
    base = {"n": args.streams, "max_tokens": args.max_tokens, "probe_tokens": args.probe_tokens, "certainty_window": args.window, "temperature": 0.7}
    rows = {"unprobed": {**base, "probe_interval": args.max_tokens + 1}, "dynasor": {**base, "probe_interval": args.interval}}
    concurrency = len(items)
    print(f"{len(items)} chain_sum problems (seed {args.seed}) x {args.streams} streams, max_tokens {args.max_tokens}, "
          f"probe every {args.interval} thinking tokens for {args.probe_tokens}, window {args.window}, model {args.model}\n")
    print(f"{'row':10} {'rep':>3} {'stream tok':>10} {'probe tok':>9} {'probes':>6} {'requests':>8} {'probe prompt':>12} "
          f"{'cached':>7} {'early':>5} {'same':>6} {'acc':>5} {'wall s':>7}")
    saved, walls = [], []
    for rep in range(args.repeats):
        got = {}
        for row, config in rows.items():
            m = got[row] = asyncio.run(measure(backend, items, config, concurrency))
            same = ""
            if row == "dynasor":
                plain = got["unprobed"]["streams"]
                same = f"{sum(plain[k].startswith(v) for k, v in m['streams'].items())}/{len(m['streams'])}"
            print(f"{row:10} {rep:3d} {m['stream_tokens']:10d} {m['probe_tokens']:9d} {m['probe_requests']:6d} {m['requests']:8d} "
                  f"{m['probe_prompt']:12d} {m['probe_cached']:7d} {m['early']:5d} {same:>6} {m['acc']:5.2f} {m['wall']:7.1f}", flush=True)
        plain, probed = got["unprobed"], got["dynasor"]
        saved.append(1 - probed["stream_tokens"] / plain["stream_tokens"])
        walls.append(probed["wall"] / plain["wall"])
        print(f"    stream tokens saved {saved[-1]:.1%}; all tokens (probes included) {ratio(probed['stream_tokens'] + probed['probe_tokens'], plain['stream_tokens'])} "
              f"of unprobed; requests {ratio(probed['requests'], plain['requests'])}; probe prompts from the cache "
              f"{probed['probe_cached'] / max(probed['probe_prompt'], 1):.1%}; wall {walls[-1]:.2f}x")
    spread = lambda xs: f"{statistics.mean(xs):.3f} (min {min(xs):.3f}, max {max(xs):.3f})"  # noqa: E731
    print(f"\nover {args.repeats} repeats: stream tokens saved {spread(saved)}; wall dynasor/unprobed {spread(walls)}")
    asyncio.run(backend.close())


if __name__ == "__main__":
    main()
