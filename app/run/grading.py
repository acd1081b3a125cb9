"""Grading a JSONL file of responses against references (`ponder grade`).

Every line is parsed and checked before anything is written, and the output is written to a
temporary file renamed into place, so a malformed line leaves nothing partial behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..data.datasets import rows_of
from .stats import Interval, bootstrap_mean
from ...verifiers.answer import equivalent, extract


@dataclass(frozen=True)
class GradeSummary:
    total: int
    correct: int
    output: Path

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def interval(self) -> Interval | None:
        """The accuracy with its 95% interval (the one every ponder report uses)."""
        return bootstrap_mean([True] * self.correct + [False] * (self.total - self.correct)) if self.total else None


def grade_file(path: Path, output: Path | None = None, response_field: str = "response", reference_field: str = "reference") -> GradeSummary:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    rows = []
    for number, row in rows_of(path):
        for field in (response_field, reference_field):
            if field not in row:
                raise ValueError(f"{path}:{number}: missing field {field!r}")
        rows.append(row)
    out = output or path.with_name(path.stem + ".graded.jsonl")
    correct = 0
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                got = extract(str(row[response_field]), int(row.get("choices", 0) or 0))
                ok = equivalent(got.text, str(row[reference_field]))
                correct += ok
                f.write(json.dumps({**row, "extracted": got.text, "is_correct": ok}) + "\n")
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    return GradeSummary(len(rows), correct, out)
