"""Engines behind the Backend contract, built by name; heavy imports happen in the factory."""

from __future__ import annotations

from typing import Any

from .base import Backend, BackendStats, Completion, Delta, Sampling, Tokenizer, Usage

BACKENDS = ("vllm", "openai", "scripted")


def make_backend(kind: str, **options: Any) -> Backend:
    """The one way to build a backend from a kind and its options.

    - `vllm`: the in-process engine; options are EngineConfig fields (model, max_model_len, ...).
    - `openai`: an OpenAI-compatible HTTP client; options are OpenAIConfig fields (endpoints, ...).
    - `scripted`: the deterministic test backend; options are ScriptedBackend's arguments (script, ...).
    Unknown or invalid options raise ValueError naming the field.
    """
    if kind == "vllm":
        from .vllm import EngineConfig, VllmBackend

        return VllmBackend(EngineConfig(**options))
    if kind == "openai":
        from .openai import OpenAIBackend, OpenAIConfig

        return OpenAIBackend(OpenAIConfig(**options))
    if kind == "scripted":
        from .scripted import ScriptedBackend

        try:
            return ScriptedBackend(**options)
        except TypeError as e:
            raise ValueError(f"scripted backend: {e}") from None
    raise ValueError(f"unknown backend {kind!r}: expected one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "BackendStats", "Completion", "Delta", "Sampling", "Tokenizer", "Usage", "make_backend"]
