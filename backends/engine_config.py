"""What one in-process vLLM engine is built from: its config, the engine arguments and the
environment derived from it.

Settings belong to one engine. vLLM reads a few of them from environment variables, and the
engine's worker process inherits the environment when it is spawned, so those variables are
set exactly while that engine is constructed and restored afterwards (never `setdefault`,
which would let the first engine's value leak into every later one).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from pydantic import BaseModel, ConfigDict, Field

GIB = 1 << 30
# Large enough that a whole prompt of the default context fits in one scheduler step.
CPU_MIN_BATCHED_TOKENS = 4096


class EngineConfig(BaseModel):
    """Engine options; `extra_args` passes any other AsyncEngineArgs field through."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "smollm2-135m-instruct"
    dtype: str = "auto"  # auto = float32 on CPU (no native bf16 there), the model's dtype on GPU
    max_model_len: int = Field(4096, ge=64)
    kv_cache_gib: float = Field(2.0, gt=0)  # CPU: KV cache size (fractions allowed); GPU: see gpu_memory_utilization
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    block_size: int | None = 32  # CPU default 128 reuses prefixes too coarsely
    max_num_seqs: int = Field(64, ge=1)
    # Prompt tokens one scheduler step may take. None: vLLM's default on GPU; on CPU
    # max(max_model_len, 4096), so that every prompt is prefilled in a single step (see below).
    max_num_batched_tokens: int | None = Field(None, ge=1)
    tensor_parallel_size: int = Field(1, ge=1)
    enforce_eager: bool = True  # start in ~20 s instead of ~60 s with compilation
    seed: int = 0
    # CPU: OpenMP threads for the engine's matmuls, one bound to each of the first `threads`
    # cores this process may use; None: every such core (see engine_env)
    threads: int | None = Field(None, ge=1)
    log_stats: bool = False  # keep vLLM's Prometheus counters (prefill tokens computed vs cached)
    extra_args: dict[str, Any] = Field(default_factory=dict)


def engine_args(cfg: EngineConfig, model_path: Path, on_cpu: bool) -> dict[str, Any]:
    """AsyncEngineArgs fields for `cfg`."""
    args: dict[str, Any] = dict(
        model=str(model_path),
        dtype=("float32" if on_cpu else "auto") if cfg.dtype == "auto" else cfg.dtype,
        max_model_len=cfg.max_model_len,
        enable_prefix_caching=True,
        max_num_seqs=cfg.max_num_seqs,
        tensor_parallel_size=cfg.tensor_parallel_size,
        enforce_eager=cfg.enforce_eager,
        seed=cfg.seed,
        disable_log_stats=not cfg.log_stats,
    )
    if cfg.block_size:
        args["block_size"] = cfg.block_size
    if on_cpu:
        # A prompt split over scheduler steps (chunked prefill) makes vLLM rewind the seeded
        # generator of its request, and CPU generators cannot rewind ("CPU Generator does not
        # use offset"): the engine dies. Unchunked, every prompt is prefilled in one step, so
        # the budget must hold the longest prompt. Per-request seeds stay reproducible: each
        # seeded request samples from its own generator whatever the batch around it.
        args["enable_chunked_prefill"] = False
        args["max_num_batched_tokens"] = cfg.max_num_batched_tokens or max(cfg.max_model_len, CPU_MIN_BATCHED_TOKENS)
        args["kv_cache_memory_bytes"] = int(cfg.kv_cache_gib * GIB)
    else:
        args["gpu_memory_utilization"] = cfg.gpu_memory_utilization
        if cfg.max_num_batched_tokens:
            args["max_num_batched_tokens"] = cfg.max_num_batched_tokens
    args.update(cfg.extra_args)
    return args


def engine_env(cfg: EngineConfig, model_path: Path) -> dict[str, str | None]:
    """Environment for the engine's construction (None = unset while it is built)."""
    return {
        # the legacy variable would override this engine's kv_cache_memory_bytes
        "VLLM_CPU_KVCACHE_SPACE": None,
        "OMP_NUM_THREADS": str(cfg.threads) if cfg.threads else os.environ.get("OMP_NUM_THREADS"),
        "HF_HUB_OFFLINE": "1" if model_path.is_dir() else os.environ.get("HF_HUB_OFFLINE"),
        **cpu_threads_env(cfg),
    }


def cpu_threads_env(cfg: EngineConfig) -> dict[str, str | None]:
    """Which cores the CPU worker binds its OpenMP threads to (ignored on GPU).

    vLLM's CPU worker binds its threads itself and sets OMP_NUM_THREADS to the number it binds,
    so OMP_NUM_THREADS alone changes nothing. Left to itself it keeps one core out for its
    scheduler process: on 2 cores the matmuls get one. Binding every core gave 1.58x the
    tokens/s (3 pairs, 1.11x-1.83x; bench/engine_settings.py, README "CPU engine settings").
    A binding set in the environment is kept unless `threads` asks for a count; with tensor
    parallelism (one list per rank) vLLM's own binding stays.
    """
    if cfg.tensor_parallel_size > 1 or (cfg.threads is None and os.environ.get("VLLM_CPU_OMP_THREADS_BIND")):
        return {}
    cores = sorted(os.sched_getaffinity(0))[: cfg.threads]
    return {"VLLM_CPU_OMP_THREADS_BIND": ",".join(str(c) for c in cores)}


@contextmanager
def engine_setup(cfg: EngineConfig, model_path: Path) -> Iterator[Any]:
    """vLLM's validated VllmConfig for this engine, with the engine's environment in place
    while the block runs: build the engine inside the block. Starts nothing by itself."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.platforms import current_platform
    from vllm.usage.usage_lib import UsageContext

    try:
        parsed = AsyncEngineArgs(**engine_args(cfg, model_path, current_platform.is_cpu()))
    except TypeError as e:
        raise ValueError(f"engine option not understood by vLLM: {e}") from e
    with scoped_env(engine_env(cfg, model_path)):
        yield parsed.create_engine_config(UsageContext.ENGINE_CONTEXT)


_ENV_LOCK = threading.Lock()  # two engines built at once must not see each other's variables


@contextmanager
def scoped_env(env: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or unset, for None) these variables for the duration of the block, then restore."""
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in env}
        try:
            for k, v in env.items():
                _put(k, v)
            yield
        finally:
            for k, v in saved.items():
                _put(k, v)


def _put(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value
