"""Engine benchmark, measured side by side in one run (one engine at a time, never concurrently).

1. Overhead: 32 concurrent greedy requests through ponder's VllmBackend vs the same token
   prompts through vLLM's own offline `LLM.generate` (same engine options). Target <= 1.10.
2. Prefix sharing: best-of-16 on one prompt as one n=16 request vs 16 requests that cannot
   share (each with its own cache salt); prompt tokens the engine computed, read from vLLM's own
   counters (vllm:prompt_tokens_by_source{source=local_compute}). Target >= 10x fewer.

Run: .venv/bin/python bench/engine.py [--requests 32] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import time

SYSTEM = (
    "You are a careful mathematician. Solve the problem step by step. State every intermediate "
    "result, check each calculation twice, and end with the final answer in \\boxed{}. "
) * 4


def computed_prompt_tokens() -> float:
    from vllm.v1.metrics.reader import get_metrics_snapshot

    return sum(
        m.value for m in get_metrics_snapshot()
        if m.name == "vllm:prompt_tokens_by_source" and m.labels.get("source") == "local_compute"
    )


async def ponder_side(backend, prompts, max_tokens):
    from ponder.backends.base import Sampling

    s = Sampling(temperature=0.0, max_tokens=max_tokens)
    await backend.generate(prompts[0][:8], Sampling(max_tokens=4))  # warm-up
    t = time.perf_counter()
    outs = await asyncio.gather(*(backend.generate(p, s) for p in prompts))
    elapsed = time.perf_counter() - t
    return elapsed, sum(len(o[0].token_ids) for o in outs)


async def sharing_side(backend, prompt, n):
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from ponder.backends.base import Sampling

    before = computed_prompt_tokens()
    await backend.generate(prompt, Sampling(n=n, temperature=0.8, max_tokens=16, seed=0))
    await asyncio.sleep(0.5)  # counters arrive with the engine's next stats message
    shared = computed_prompt_tokens() - before

    async def salted(i):
        async for _ in backend.engine.generate(
            TokensPrompt(prompt_token_ids=list(prompt), cache_salt=f"bench-{i}"),
            SamplingParams(temperature=0.8, max_tokens=16, seed=i), f"salted-{i}",
        ):
            pass

    before = computed_prompt_tokens()
    await backend.run_on_engine(_all(salted, n))
    await asyncio.sleep(0.5)
    return shared, computed_prompt_tokens() - before


async def _all(fn, n):
    await asyncio.gather(*(fn(i) for i in range(n)))


def vllm_side(model_path, cfg, prompts, max_tokens):
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.platforms import current_platform

    from ponder.backends.engine_config import engine_args, engine_env, scoped_env

    # exactly the engine arguments and environment VllmBackend builds its engine with
    with scoped_env(engine_env(cfg, model_path)):
        llm = LLM(**engine_args(cfg, model_path, current_platform.is_cpu()))
    llm.generate([TokensPrompt(prompt_token_ids=prompts[0][:8])], SamplingParams(max_tokens=4), use_tqdm=False)
    t = time.perf_counter()
    outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], SamplingParams(temperature=0.0, max_tokens=max_tokens), use_tqdm=False)
    elapsed = time.perf_counter() - t
    return elapsed, sum(len(o.outputs[0].token_ids) for o in outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--samples", type=int, default=16)
    args = ap.parse_args()

    from ponder.backends.vllm import EngineConfig, VllmBackend

    cfg = EngineConfig(model=args.model, log_stats=True, max_num_seqs=max(64, args.requests))
    backend = VllmBackend(cfg)
    tok = backend.tokenizer
    prompts = [tok.chat([{"role": "user", "content": f"What is {i} times {i + 3}? Explain."}]) for i in range(args.requests)]
    long_prompt = tok.chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 17 + 25?"}])

    p_s, p_tok = asyncio.run(ponder_side(backend, prompts, args.max_tokens))
    shared, unshared = asyncio.run(sharing_side(backend, long_prompt, args.samples))
    model_path = backend.model_path
    asyncio.run(backend.close())
    del backend

    v_s, v_tok = vllm_side(model_path, cfg, prompts, args.max_tokens)

    print(f"\n{args.requests} concurrent greedy requests, max_tokens {args.max_tokens}")
    print(f"  ponder VllmBackend : {p_tok} tokens in {p_s:.2f} s = {p_tok / p_s:.1f} tok/s")
    print(f"  vLLM LLM.generate  : {v_tok} tokens in {v_s:.2f} s = {v_tok / v_s:.1f} tok/s")
    print(f"  overhead ratio (time per token, ponder / vLLM): {(p_s / p_tok) / (v_s / v_tok):.3f}  (target <= 1.10)")
    print(f"\nbest-of-{args.samples} on one {len(long_prompt)}-token prompt, prompt tokens the engine computed")
    print(f"  one n={args.samples} request (shared prefix): {shared:.0f}")
    print(f"  {args.samples} unshared requests (cache salts): {unshared:.0f}")
    print(f"  ratio: {unshared / max(shared, 1):.1f}x fewer  (target >= 10x)")


if __name__ == "__main__":
    main()
