"""Scale-out on one machine: beam search over HTTP on one vLLM server, on two behind ponder's own
prefix-affinity routing, and on two behind vllm-router (cache_aware) as one endpoint.

Two CPU `vllm serve` processes, each with its matmul threads bound to its own core; the same
beam-search requests (same problems, seeds and settings) go through ponder's OpenAIBackend in
each setup (vllm-router with its defaults and tuned: ROUTER_TUNED), the setups taking turns (the order alternating between rounds) with every server's
prefix cache emptied before each run, so no setup reads what another left. Printed per run:
wall time, generated tokens per second, the prefix-cache hit rate ponder's ledger saw (cached /
prompt tokens, as the servers report them) and the servers' own counters (prefix-cache hits /
queries), and the share of requests each server took.

Run: .venv/bin/python bench/scale_out.py [--problems 8] [--rounds 2] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from strategies import problems  # noqa: E402  (bench/strategies.py: the same seeded sums)

BEAM = dict(n=8, width=4, step_tokens=32, final_tokens=64, max_steps=3)


def server_command(model: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
        "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
        "--max-model-len", "1024", "--enforce-eager", "--block-size", "32", "--enable-prefix-caching",
        "--enable-prompt-tokens-details", "--max-num-seqs", "64",
        # no chunked prefill on CPU: a seeded prompt split over steps kills the engine
        "--no-enable-chunked-prefill", "--max-num-batched-tokens", "2048",
    ]


def server_env(core: int) -> dict[str, str]:
    # one core each for the matmul threads; dev mode exposes POST /reset_prefix_cache
    return {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING",
            "VLLM_CPU_OMP_THREADS_BIND": str(core), "VLLM_SERVER_DEV_MODE": "1"}


# vllm-router's cache_aware defaults send a prompt to the server holding its longest match once
# 30% of it matches, and balance load only past 64 requests of difference: every problem's
# prompt shares the chat template, so at this scale all of them match the first server. A
# higher threshold does not help: the router learns the prompts it routed, not what they
# generated, so a beam's continuation matches its parent's prompt by only 60-80%. Tuned: load
# is balanced from 8 requests of difference on.
ROUTER_TUNED = ["--balance-abs-threshold", "8"]


def router_command(workers: list[str], port: int, *options: str) -> list[str]:
    exe = shutil.which("vllm-router", path=str(Path(sys.executable).parent)) or "vllm-router"
    from ponder.tests.servers import free_port

    return [exe, "--host", "127.0.0.1", "--port", str(port), "--policy", "cache_aware",
            "--worker-urls", *[w.removesuffix("/v1") for w in workers], "--log-level", "warning",
            "--prometheus-port", str(free_port()), *options]  # each router its own metrics port


def counters(url: str) -> dict[str, float]:
    """vLLM's prefix-cache counters and request count from a server's /metrics."""
    text = urllib.request.urlopen(url.removesuffix("/v1") + "/metrics", timeout=10).read().decode()
    out = {"hits": 0.0, "queries": 0.0, "requests": 0.0}
    for line in text.splitlines():
        name = line.split("{")[0].split(" ")[0]
        value = line.rsplit(" ", 1)[-1]
        if name == "vllm:prefix_cache_hits_total":
            out["hits"] += float(value)
        elif name == "vllm:prefix_cache_queries_total":
            out["queries"] += float(value)
        elif name == "vllm:request_success_total":
            out["requests"] += float(value)
    return out


def reset(url: str) -> None:
    req = urllib.request.Request(url.removesuffix("/v1") + "/reset_prefix_cache", method="POST")
    urllib.request.urlopen(req, timeout=30).read()


async def beam(endpoints: list[str], items, concurrency: int) -> dict:
    from ponder.backends.openai import OpenAIBackend, OpenAIConfig
    from ponder.runtime.solver import Solver
    from ponder.strategies.base import make_strategy
    from ponder.verifiers.arithmetic import ArithmeticScorer

    backend = OpenAIBackend(OpenAIConfig(endpoints=endpoints, served_model="smollm2"))
    try:
        solver = Solver(backend, make_strategy("beam_search", **BEAM), ArithmeticScorer(), seed=1)
        t = time.perf_counter()
        results = await solver.solve_many(items, concurrency=concurrency)
        wall = time.perf_counter() - t
    finally:
        await backend.close()
    led = solver.ledger
    return {"wall": wall, "tokens": led.generated_tokens, "hit": led.cached_tokens / max(led.prompt_tokens, 1),
            "errors": sum(bool(r.error) for r in results), "acc": sum(bool(r.correct) for r in results) / len(results)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--logs", default="/tmp/ponder-scale-out")
    args = ap.parse_args()

    from ponder.backends.models import pull
    from ponder.tests.servers import served

    model = str(pull("smollm2-135m-instruct"))
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    items = problems(args.problems, args.seed)
    with contextlib.ExitStack() as stack:
        s1, _ = stack.enter_context(served(lambda p: server_command(model, p), logs / "server1.log", server_env(0)))
        s2, _ = stack.enter_context(served(lambda p: server_command(model, p), logs / "server2.log", server_env(1)))
        router, _ = stack.enter_context(served(lambda p: router_command([s1, s2], p), logs / "router.log", dict(os.environ)))
        tuned, _ = stack.enter_context(served(lambda p: router_command([s1, s2], p, *ROUTER_TUNED), logs / "router2.log", dict(os.environ)))
        setups = {"one server": [s1], "two, ponder affinity": [s1, s2], "two, vllm-router": [router], "two, router tuned": [tuned]}
        print(f"{len(items)} chain_sum problems, beam_search {BEAM}, concurrency {args.concurrency}; servers {s1} (core 0), {s2} (core 1), router {router}\n")
        print(f"{'setup':22} {'round':>5} {'wall s':>7} {'gen tok':>8} {'tok/s':>6} {'hit':>5} {'server hit':>10} {'share s1/s2':>12} {'acc':>5} {'err':>4}")
        seen: dict[str, list[float]] = {}
        for r in range(args.rounds):
            order = list(setups) if r % 2 == 0 else list(reversed(setups))
            for name in order:
                for s in (s1, s2):
                    reset(s)
                before = [counters(s) for s in (s1, s2)]
                m = asyncio.run(beam(setups[name], items, args.concurrency))
                after = [counters(s) for s in (s1, s2)]
                d = [{k: a[k] - b[k] for k in a} for a, b in zip(after, before)]
                hits, queries = sum(x["hits"] for x in d), sum(x["queries"] for x in d)
                total = max(sum(x["requests"] for x in d), 1)
                rate = m["tokens"] / m["wall"]
                seen.setdefault(name, []).append(rate)
                print(f"{name:22} {r:5d} {m['wall']:7.1f} {m['tokens']:8d} {rate:6.1f} {m['hit']:5.2f} {hits / max(queries, 1):10.2f}"
                      f" {d[0]['requests'] / total:5.2f}/{d[1]['requests'] / total:4.2f} {m['acc']:5.2f} {m['errors']:4d}", flush=True)
        print()
        base = sum(seen["one server"]) / len(seen["one server"])
        for name, rates in seen.items():
            print(f"{name:22} mean {sum(rates) / len(rates):6.1f} tok/s (runs {', '.join(f'{x:.1f}' for x in rates)}), {sum(rates) / len(rates) / base:.2f}x one server")


if __name__ == "__main__":
    main()
