"""Engines behind the Backend contract, found by name; heavy imports happen in the factory."""

from __future__ import annotations

from typing import Any

from .base import Backend, BackendStats, Completion, Delta, Sampling, Tokenizer, Usage

BACKENDS = ("vllm", "openai")


def make_backend(name: str, **options: Any) -> Backend:
    """`vllm`: in-process engine (options = EngineConfig fields); `openai`: HTTP client."""
    if name == "vllm":
        from .vllm import EngineConfig, VllmBackend

        return VllmBackend(EngineConfig(**options))
    if name == "openai":
        from .openai import OpenAIBackend, OpenAIConfig

        return OpenAIBackend(OpenAIConfig(**options))
    raise ValueError(f"unknown backend {name!r}: expected one of {', '.join(BACKENDS)}")


__all__ = ["Backend", "BackendStats", "Completion", "Delta", "Sampling", "Tokenizer", "Usage", "make_backend"]
