"""Answer grading, voting and step scorers; scorers found by name.

A scorer is a class built as `Class(**options)`, or `Class(backend, **options)` when it reads
probabilities from an engine: such a class says so with `needs_backend = True` (or is
registered with `needs_backend=True`). Built-ins register through `register_scorer` as users'
scorers and installed packages (entry-point group `ponder.scorers`) do.
"""

from __future__ import annotations

from typing import Any

from ..records.registry import Registry
from .answer import equivalent, extract
from .base import OutcomeVerifier, StepScorer, Verdict

SCORERS: Registry[type] = Registry("scorer", "ponder.scorers")
_NEEDS_BACKEND: set[str] = set()  # registered as needing one, for classes that do not say so themselves


def register_scorer(what: Any = None, target: Any = None, *, name: str | None = None, needs_backend: bool | None = None) -> Any:
    """Make a step scorer findable by name (`scorer:` in YAML, `--scorer`, `make_scorer`).

    `@register_scorer("name")` on a class, `register_scorer("name", Class)`, or
    `register_scorer("name", "package.module:Class")` to import it on first use."""
    def add(key: str | None, obj: Any) -> Any:
        key = key or getattr(obj, "name", None)
        if not isinstance(key, str) or not key:
            raise ValueError(f"scorer {obj!r}: register it with a name")
        SCORERS.register(key, obj)
        if needs_backend:
            _NEEDS_BACKEND.add(key)
        return obj

    if isinstance(what, str):
        return (lambda cls: add(what, cls)) if target is None else add(what, target)
    if what is None:
        return lambda cls: add(name, cls)
    return add(name, what)


for _name, _target, _backend in (
    ("arithmetic", "arithmetic:ArithmeticScorer", False),
    ("pooling", "pooling:PoolingPRM", False),  # its own classifier engine or server, not the policy's
    ("logprob", "logprob:LogprobPRM", True),
    ("judge", "judge:Judge", True),
    ("confidence", "confidence:ConfidenceScorer", False),  # reads the policy's logprobs through the Context
):
    register_scorer(_name, f"{__package__}.{_target}", needs_backend=_backend)


def make_scorer(name: str, backend: Any = None, **options: Any) -> StepScorer:
    """The scorer `name` built with `options`; one that reads probabilities gets `backend`
    (the policy's own engine or a second one)."""
    cls = SCORERS.load(name)
    if getattr(cls, "needs_backend", name in _NEEDS_BACKEND):
        if backend is None:
            raise ValueError(f"scorer {name!r} needs a backend to read probabilities from")
        return cls(backend, **options)
    return cls(**options)


__all__ = ["SCORERS", "OutcomeVerifier", "StepScorer", "Verdict", "equivalent", "extract", "make_scorer", "register_scorer"]
