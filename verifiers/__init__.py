"""Answer grading, voting and step scorers; scorers found by name.

A scorer is a class built as `Class(**options)`, or `Class(backend, **options)` when it reads
probabilities from an engine: such a class says so with `needs_backend = True`. Built-ins register through `register_scorer` as users'
scorers and installed packages (entry-point group `ponder.scorers`) do.
"""

from __future__ import annotations

from typing import Any

from ..records.registry import Registry, registrar
from .answer import equivalent, extract
from .base import OutcomeVerifier, StepScorer, Verdict

SCORERS: Registry[type] = Registry("scorer", "ponder.scorers")


def register_scorer(what: Any = None, target: Any = None, *, name: str | None = None) -> Any:
    """Make a step scorer findable by name (`scorer:` in YAML, `--scorer`, `make_scorer`).

    `@register_scorer("name")` on a class, `register_scorer("name", Class)`, or
    `register_scorer("name", "package.module:Class")` to import it on first use."""
    def add(key: str | None, obj: Any) -> Any:
        key = key or getattr(obj, "name", None)
        if not isinstance(key, str) or not key:
            raise ValueError(f"scorer {obj!r}: register it with a name")
        SCORERS.register(key, obj)
        return obj

    return registrar(add, what, target, name)


for _name, _target in (
    ("arithmetic", "arithmetic:ArithmeticScorer"),
    ("pooling", "pooling:PoolingPRM"),  # its own classifier engine or server, not the policy's
    ("logprob", "logprob:LogprobPRM"),
    ("judge", "judge:Judge"),
    ("confidence", "confidence:ConfidenceScorer"),  # reads the policy's logprobs through the Context
    ("value", "value:ValueScorer"),  # a head from `ponder value train` on the policy's hidden states
):
    register_scorer(_name, f"{__package__}.{_target}")


def make_scorer(name: str, backend: Any = None, **options: Any) -> StepScorer:
    """The scorer `name` built with `options`; one that reads probabilities gets `backend`
    (the policy's own engine or a second one)."""
    cls = SCORERS.load(name)
    if getattr(cls, "needs_backend", False):
        if backend is None:
            raise ValueError(f"scorer {name!r} needs a backend to read probabilities from")
        return cls(backend, **options)
    return cls(**options)


__all__ = ["SCORERS", "OutcomeVerifier", "StepScorer", "Verdict", "equivalent", "extract", "make_scorer", "register_scorer"]
