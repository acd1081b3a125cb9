"""The CPU engine's own settings, measured paired: each variant against the default engine.

Both engines live at once (one process, only one of them busy at a time) and take turns on one
fixed workload, the order alternating (A B, B A, A B, ...), so slow drift on a shared machine
falls on both sides alike; each pair gives one ratio (variant / default tokens per second) and
the table shows their mean and spread. The workload is one beam-search-like step of a batch:
`--requests` seeded sampling requests (temperature 0.8) of `--max-tokens` tokens each, all in
flight at once, on the chat prompts of two-term sums.

Variants: OpenMP runtime (Intel's libiomp5 preloaded instead of the libgomp vLLM preloads),
OpenMP threads (ponder binds one to every core; vLLM by itself keeps one core for its scheduler
process, `vllm_bind`; `threads_1` one thread), `max_num_batched_tokens` (on CPU at least max_model_len: there is
no chunked prefill), block size, `max_num_seqs`. Environment variables only reach the engine's
worker process if they are set before the engine is built (it is spawned, and the dynamic loader
reads LD_PRELOAD when it starts): the check column reads the engine process's memory map.

Run: .venv/bin/python bench/engine_settings.py [--only iomp,vllm_bind] [--repeat 3] [--requests 96] [--max-tokens 16]
     [--beam 12]   (the workload: beam_search with solve_many on 12 sums instead)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

IOMP = str(Path(sys.prefix) / "lib" / "libiomp5.so")
BASE = dict(kv_cache_gib=1.0)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "iomp": ({}, {"LD_PRELOAD": IOMP}),
    # ponder binds every core (engine_config.cpu_threads_env); vLLM alone keeps one for its scheduler
    "vllm_bind": ({}, {"VLLM_CPU_OMP_THREADS_BIND": "auto"}),
    "threads_1": ({"threads": 1}, {}),
    "batched_8192": ({"max_num_batched_tokens": 8192}, {}),
    "block_64": ({"block_size": 64}, {}),  # the CPU attention kernels take multiples of 32 only
    "block_128": ({"block_size": 128}, {}),
    "seqs_32": ({"max_num_seqs": 32}, {}),
    "seqs_128": ({"max_num_seqs": 128}, {}),
}


def start(overrides: dict, env: dict):
    """A VllmBackend built with `env` in place (restored afterwards: its worker keeps it)."""
    from ponder.backends.vllm import EngineConfig, VllmBackend

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return VllmBackend(EngineConfig(**BASE, **overrides))
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def engine_processes() -> dict[int, str]:
    """Child processes of this one that run vLLM's engine core: pid -> libraries of note."""
    import psutil

    out = {}
    for child in psutil.Process().children(recursive=True):
        try:
            maps = Path(f"/proc/{child.pid}/maps").read_text()
        except OSError:
            continue
        if "libtorch" in maps:
            libs = [name for name in ("libiomp5", "libgomp", "libtcmalloc") if name in maps]
            out[child.pid] = f"{'+'.join(libs) or '-'} threads={child.num_threads()}"
    return out


async def workload(backend, prompts: list[list[int]], max_tokens: int, seed: int) -> float:
    from ponder.backends.base import Sampling

    async def one(i: int) -> int:
        (c,) = await backend.generate(prompts[i], Sampling(temperature=0.8, max_tokens=max_tokens, seed=seed + i))
        return len(c.token_ids)

    t = time.perf_counter()
    tokens = sum(await asyncio.gather(*(one(i) for i in range(len(prompts)))))
    return tokens / (time.perf_counter() - t)


def beam(backend, count: int, seed: int) -> float:
    """Generated tokens/s of beam_search on `count` sums (bench/strategies.py's row), all at once."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from strategies import ROWS, problems, run

    name, config = ROWS["beam_search"]
    return asyncio.run(run(backend, name, config, problems(count, seed), 16))["rate"]


def prompts_for(backend, count: int) -> list[list[int]]:
    tok = backend.tokenizer
    return [tok.chat([{"role": "user", "content": f"What is {7 + i % 53} + {11 + 3 * i % 61}?\nPlease reason step by step."}]) for i in range(count)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated variants (default: all)")
    ap.add_argument("--repeat", type=int, default=3, help="pairs per variant")
    ap.add_argument("--requests", type=int, default=96)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--beam", type=int, default=0, help="workload: beam_search on this many problems instead")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)

    base = start({}, {})
    default_procs = set(engine_processes())
    prompts = prompts_for(base, args.requests)
    asyncio.run(workload(base, prompts[:8], 8, 0))  # warm-up
    print(f"workload: {args.requests} seeded sampling requests of {args.max_tokens} tokens in flight; "
          f"{args.repeat} pairs per variant; default engine {base.config.model_dump(include={'block_size', 'max_num_seqs', 'max_num_batched_tokens', 'kv_cache_gib'})}")
    print(f"default engine process: {engine_processes()}\n")
    print(f"{'variant':14} {'default tok/s':>14} {'variant tok/s':>14} {'ratio':>6} {'min':>6} {'max':>6}  pairs; engine process")
    for name in names:
        overrides, env = VARIANTS[name]
        other = start(overrides, env)
        procs = {pid: v for pid, v in engine_processes().items() if pid not in default_procs}
        asyncio.run(workload(other, prompts[:8], 8, 0))
        a, b = [], []
        for r in range(args.repeat):
            seed = 1000 * (r + 1)
            for side in ((base, a), (other, b)) if r % 2 == 0 else ((other, b), (base, a)):
                if args.beam:
                    side[1].append(beam(side[0], args.beam, r + 1))
                else:
                    side[1].append(asyncio.run(workload(side[0], prompts, args.max_tokens, seed)))
        ratios = [y / x for x, y in zip(a, b)]
        print(f"{name:14} {statistics.mean(a):14.1f} {statistics.mean(b):14.1f} {statistics.mean(ratios):6.3f} {min(ratios):6.3f} {max(ratios):6.3f}  "
              f"{' '.join(f'{x:.3f}' for x in ratios)}; {' '.join(procs.values())}", flush=True)
        asyncio.run(other.close())
    asyncio.run(base.close())


if __name__ == "__main__":
    main()
