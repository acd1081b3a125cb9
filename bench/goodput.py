"""What holds beam search below the engine's own rate: beam_search with `solve_many`, on the
engine as ponder drives it (each sample its own engine request) and with each call's n samples
sent as one vLLM n-request (the prompt prefilled once, the samples forked from it), taking
turns in one run on one engine, with the engine's own rate measured in the same run.

Every sample as its own request makes each of a beam's M expansions recompute the part of the
prefix that does not fill a whole cache block (block size 32: 16 tokens on average, against
steps of 10 to 48 tokens), which a single n-request computes once. `prefill/gen` is the prompt
tokens the engine computed per generated token (from the ledger), `inflight` the mean number
of engine requests held, `full` the share of the run with a full running batch.

Measured (10 problems, concurrency 16, 2 pairs): the n-request computes 5x fewer prompt tokens
per generated token (0.08 against 0.40) at the same tokens per second (0.98x, 0.98x); requests
held per tenth of the run fall from ~70 to under 10 over its second half: the tail of the last
problems, not the prefix, is what the engine waits on.

Run: .venv/bin/python bench/goodput.py [--problems 12] [--concurrency 16] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from strategies import ROWS, engine_rate, problems, run, shape  # noqa: E402


class NRequest:
    """`backend` with the n samples of one call sent as one vLLM n-request. Seeds as vLLM
    seeds an n-request (sample i: seed + i), so the tokens are those of n one-sample requests."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self._ids = itertools.count()

    def __getattr__(self, name):
        return getattr(self._backend, name)

    async def generate(self, prompt_ids, sampling):
        if sampling.n == 1:
            return await self._backend.generate(prompt_ids, sampling)
        return await self._backend.run_on_engine(self._one_request(list(prompt_ids), sampling))

    async def _one_request(self, ids, sampling):
        from vllm.inputs import TokensPrompt

        from ponder.backends.base import Completion, Usage, finish_reason

        final = None
        params = self._backend._params(sampling, "FINAL_ONLY")
        async for out in self._backend.engine.generate(TokensPrompt(prompt_token_ids=ids), params, f"bench-n{next(self._ids)}"):
            final = out
        cached = final.num_cached_tokens or 0
        out = []
        for i, o in enumerate(final.outputs):
            # the prompt is computed once; the other samples read it from the fork
            usage = Usage(len(ids), cached if i == 0 else len(ids), len(o.token_ids))
            reason, hit = finish_reason(o.finish_reason, o.stop_reason)
            out.append(Completion(tuple(o.token_ids), o.text, reason, hit, usage=usage))
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    args = ap.parse_args()

    from ponder.backends.vllm import EngineConfig, VllmBackend

    backend = VllmBackend(EngineConfig(model=args.model))
    items = problems(args.problems, args.seed)
    name, config = ROWS["beam_search"]
    asyncio.run(engine_rate(backend, items[:4], 4, 8))  # warm-up
    width, tokens = shape(config)
    u0 = backend.stats().usage
    ceiling = asyncio.run(engine_rate(backend, items, min(args.concurrency, len(items)) * width, tokens))
    u1 = backend.stats().usage
    prefill = (u1.computed_prompt_tokens - u0.computed_prompt_tokens) / max(u1.generated_tokens - u0.generated_tokens, 1)
    print(f"{len(items)} problems, beam_search {config}, concurrency {args.concurrency}; "
          f"engine's own rate {ceiling:.1f} tok/s (prefill/gen {prefill:.2f})\n")
    print(f"{'requests':22} {'tok/s':>6} {'util':>5} {'gen tok':>8} {'acc':>5} {'prefill/gen':>11} {'inflight':>8} {'full':>5}  held per tenth")
    got: dict[str, list[float]] = {}
    for r in range(args.repeat):
        sides = [("one per sample", backend), ("one n-request per call", NRequest(backend))]
        for label, b in sides if r % 2 == 0 else reversed(sides):
            m = asyncio.run(run(b, name, config, items, args.concurrency))
            got.setdefault(label, []).append(m["rate"])
            print(f"{label:22} {m['rate']:6.1f} {m['rate'] / ceiling:5.2f} {m['tokens']:8d} {m['acc']:5.2f} {m['prefill']:11.2f} {m['inflight']:8.1f} {m['full']:5.2f}  {m['timeline']}", flush=True)
    a, b = got["one per sample"], got["one n-request per call"]
    ratios = [y / x for x, y in zip(a, b)]
    print(f"\nn-request / per-sample tokens/s: mean {statistics.mean(ratios):.2f} (pairs {', '.join(f'{x:.2f}' for x in ratios)})")
    asyncio.run(backend.close())


if __name__ == "__main__":
    main()
