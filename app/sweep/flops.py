"""Compute as FLOPs: 2 × parameters × tokens through each model (a forward pass's multiply-adds).

Parameters are counted from the model folder's safetensors headers (a JSON block in front of
the weights: no weights are read, no torch imported). The embedded SmolLM2-135M-Instruct has
134,515,008 (tied input and output embeddings, counted once). A backend without a model folder
(scripted, or a remote server's model not on this machine) has no count and no FLOPs figure.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..run.run_config import BackendSection, RunConfig


NO_MODEL = {"arithmetic", "confidence"}  # the step checker runs no model; confidence reads the policy's logprobs


@lru_cache(maxsize=None)
def folder_parameters(folder: Path) -> int | None:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for f in files:
        with f.open("rb") as fh:
            size = struct.unpack("<Q", fh.read(8))[0]
            header = json.loads(fh.read(size))
        for name, tensor in header.items():
            if name != "__metadata__":
                count = 1
                for dim in tensor["shape"]:
                    count *= dim
                total += count
    return total


def parameters(section: BackendSection | None) -> int | None:
    """The parameter count of the model a backend section serves, where it is on this machine."""
    if section is None or section.kind == "scripted":
        return None
    from ...backends.models import ModelError, resolve

    try:
        return folder_parameters(resolve(section.model))
    except (ModelError, ValueError, OSError):
        return None


@dataclass(frozen=True)
class Compute:
    """The parameter counts behind one cell: the policy's, and the scorer's (0 for a scorer
    that runs no model, such as the arithmetic checker; None where unknown)."""

    policy: int | None
    scorer: int | None

    @classmethod
    def of(cls, config: RunConfig) -> "Compute":
        policy = parameters(config.backend)
        scorer: int | None = 0
        if config.scorer is not None and config.scorer.name not in NO_MODEL:
            from ...verifiers import SCORERS

            if config.scorer.backend is not None:
                scorer = parameters(config.scorer.backend)
            elif getattr(SCORERS.load(config.scorer.name), "needs_backend", False):
                scorer = policy  # it reads the policy's own engine
            else:
                scorer = None  # a model of its own that no section here describes: not counted
        return cls(policy, scorer)

    def flops(self, record: dict[str, Any]) -> float | None:
        """One problem's FLOPs: the policy over the prompt tokens it computed (not read from the
        prefix cache) and the tokens it generated; the scorer over the tokens it was sent."""
        if self.policy is None or self.scorer is None:
            return None
        t = record["tokens"]
        policy_tokens = t["generated"] + t["prompt"] - t["cached"]
        return 2.0 * (self.policy * policy_tokens + self.scorer * record.get("verifier_tokens", 0))
