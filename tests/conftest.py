"""Shared fixtures. The real engine starts once per test session (~30-70 s, ~5 GiB)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PONDER_DATA") or REPO.parent / "shared" / "benchmarks")
os.environ.setdefault("PONDER_DATA", str(DATA))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def engine():
    """The embedded model on the in-process vLLM engine, shared by every real-engine test."""
    from ponder.backends.vllm import EngineConfig, VllmBackend

    backend = VllmBackend(EngineConfig(model="smollm2-135m-instruct", max_model_len=2048, kv_cache_gib=2, max_num_seqs=64))
    yield backend
    asyncio.run(backend.close())


@pytest.fixture
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"benchmark data not found at {DATA} (set PONDER_DATA)")
    return DATA
