"""Engine settings belong to one engine: validated, never leaked through the environment.

These build vLLM's own VllmConfig (what the engine is constructed from) without starting it;
they import vLLM and load the model's config, so they run with the engine tests.
"""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from ponder.backends.engine_config import GIB, EngineConfig, engine_args, engine_setup, scoped_env
from ponder.backends.models import pull

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def model_path():
    return pull("smollm2-135m-instruct")


def test_overrides_are_validated():
    from ponder.backends.vllm import VllmBackend

    # rejected by EngineConfig before any engine starts (a pydantic error naming the field)
    with pytest.raises(ValidationError, match="max_model_len"):
        VllmBackend(EngineConfig(), max_model_len=1)
    with pytest.raises(ValidationError, match="no_such_field"):
        VllmBackend(EngineConfig(), no_such_field=3)


def test_two_engines_get_their_own_kv_cache_even_against_the_environment(model_path, monkeypatch):
    # the legacy variable, set process-wide, used to override (or, via setdefault, pin) every engine's size
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "7")
    sizes = []
    for gib in (0.5, 1.25):
        with engine_setup(EngineConfig(model=str(model_path), kv_cache_gib=gib, max_model_len=512), model_path) as vc:
            sizes.append(vc.cache_config.kv_cache_memory_bytes)
            assert "VLLM_CPU_KVCACHE_SPACE" not in os.environ  # hidden while this engine is built
        assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "7"  # and restored afterwards
    assert sizes == [GIB // 2, int(1.25 * GIB)]  # fractions kept, each engine its own


def test_cpu_engine_prefills_every_prompt_in_one_step(model_path):
    # chunked prefill rewinds seeded CPU generators, which cannot rewind: it must be off on CPU
    with engine_setup(EngineConfig(model=str(model_path), max_model_len=6000), model_path) as vc:
        sched = vc.scheduler_config
    assert sched.enable_chunked_prefill is False
    assert sched.max_num_batched_tokens >= 6000  # the longest prompt fits one step
    small = engine_args(EngineConfig(max_model_len=512), model_path, on_cpu=True)
    assert small["max_num_batched_tokens"] == 4096 and small["enable_chunked_prefill"] is False
    gpu = engine_args(EngineConfig(max_model_len=512), model_path, on_cpu=False)
    assert "enable_chunked_prefill" not in gpu and "kv_cache_memory_bytes" not in gpu  # GPU keeps vLLM's defaults


def test_engine_threads_are_set_only_while_that_engine_is_built(model_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with engine_setup(EngineConfig(model=str(model_path), threads=3, max_model_len=512), model_path):
        assert os.environ["OMP_NUM_THREADS"] == "3"
    assert "OMP_NUM_THREADS" not in os.environ
    with engine_setup(EngineConfig(model=str(model_path), threads=1, max_model_len=512), model_path):
        assert os.environ["OMP_NUM_THREADS"] == "1"  # not the first engine's 3


def test_scoped_env_restores_on_error(monkeypatch):
    monkeypatch.setenv("PONDER_TEST_VAR", "outer")
    with pytest.raises(RuntimeError):
        with scoped_env({"PONDER_TEST_VAR": "inner", "PONDER_TEST_UNSET": None}):
            assert os.environ["PONDER_TEST_VAR"] == "inner"
            raise RuntimeError("boom")
    assert os.environ["PONDER_TEST_VAR"] == "outer" and "PONDER_TEST_UNSET" not in os.environ


def test_bad_engine_option_is_named(model_path):
    with pytest.raises(ValueError, match="engine option not understood.*no_such_option"):
        with engine_setup(EngineConfig(model=str(model_path), extra_args={"no_such_option": 1}), model_path):
            pass


def test_a_step_budget_below_the_context_is_refused_on_cpu(model_path):
    # unchunked, a prompt longer than one step could never be scheduled: vLLM refuses the config
    with pytest.raises(ValueError, match="max_num_batched_tokens"):
        with engine_setup(EngineConfig(model=str(model_path), max_model_len=512, max_num_batched_tokens=256), model_path):
            pass
