"""The CPU engine's matmul threads: bound to every core ponder may use, unless told otherwise.

vLLM's CPU worker binds its OpenMP threads itself (OMP_NUM_THREADS alone changes nothing) and,
left to itself, keeps one core for its scheduler: on a 2-core machine the matmuls got one core.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ponder.backends.engine_config import EngineConfig, engine_env

CORES = sorted(os.sched_getaffinity(0))


def _bind(cfg: EngineConfig) -> str | None:
    return engine_env(cfg, Path("/nonexistent")).get("VLLM_CPU_OMP_THREADS_BIND")


def test_every_core_by_default_and_the_first_n_when_asked(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    assert _bind(EngineConfig()) == ",".join(map(str, CORES))
    assert _bind(EngineConfig(threads=1)) == str(CORES[0])
    assert _bind(EngineConfig(threads=len(CORES) + 5)) == ",".join(map(str, CORES))  # no core twice


def test_a_binding_from_the_environment_is_kept_unless_threads_are_asked_for(monkeypatch):
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "auto")
    assert "VLLM_CPU_OMP_THREADS_BIND" not in engine_env(EngineConfig(), Path("/nonexistent"))
    assert _bind(EngineConfig(threads=1)) == str(CORES[0])


def test_tensor_parallel_ranks_keep_vllms_own_binding(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    assert "VLLM_CPU_OMP_THREADS_BIND" not in engine_env(EngineConfig(tensor_parallel_size=2), Path("/nonexistent"))


@pytest.mark.engine
def test_the_engine_worker_runs_on_every_core(engine):
    import psutil

    # the in-process engine's processes only: a `vllm serve` the session started is a child too,
    # with vLLM's own binding
    engines = [p for p in psutil.Process().children() if p.name().startswith("VLLM::")]
    workers = [p for e in engines for p in (e, *e.children(recursive=True)) if p.name().startswith("VLLM::Worker")]
    assert workers, "no vLLM worker process under this one"
    for worker in workers:
        used = set()
        for thread in worker.threads():
            used |= os.sched_getaffinity(thread.id)
        assert sorted(used) == CORES  # vLLM alone pinned every thread of the worker to one core
