"""A shard of a batch run: a fixed 1/N of the dataset, chosen by problem id, so that N
machines (a Slurm array, a Kubernetes indexed job) split one benchmark between them and
`ponder merge` joins their run directories afterwards.

A problem belongs to shard `int(sha256(id)) mod N`: the same on every machine and in every
Python process (the built-in `hash()` of a string is salted per process), independent of the
dataset's order, and the N shards of a run hold every problem exactly once. Indices count from
0, as Slurm array task ids and Kubernetes job completion indices do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ...records.problem import Problem

EXPECTED = "expected i/N with 0 <= i < N (e.g. --shard 0/4 ... --shard 3/4)"


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not (self.count >= 1 and 0 <= self.index < self.count):
            raise ValueError(f"--shard: {EXPECTED}, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`i/N` as typed on the command line; anything else is one line naming the option."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if m is None:
            raise ValueError(f"--shard: {EXPECTED}, got {text!r}")
        return cls(int(m[1]), int(m[2]))

    @classmethod
    def from_json(cls, data: Any, where: object) -> Shard:
        try:
            return cls(int(data["index"]), int(data["count"]))
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"{where}: `shard` should be {{index, count}} with 0 <= index < count, got {data!r}") from None

    def to_json(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, problem_id: str) -> bool:
        digest = hashlib.sha256(problem_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def select(self, problems: Iterable[Problem]) -> list[Problem]:
        """This shard's problems, in the dataset's order."""
        return [p for p in problems if self.holds(p.id)]

    def directory(self, run: Path) -> Path:
        """The shard's own run directory beside the unsharded run's: NAME-shard-i-of-N."""
        return run.with_name(f"{run.name}-shard-{self.index}-of-{self.count}")
