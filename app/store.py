"""A run directory: the resolved config, results.jsonl (one line per problem, flushed and
fsynced as each finishes), a trace per problem, and summary.json.

A crash can at worst leave a torn last line; resuming drops it and redoes only that problem.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

from ..records.problem import Problem
from ..records.result import Result


class RunStore:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.results = directory / "results.jsonl"
        self.traces = directory / "traces"

    def create(self, resolved_config: dict[str, Any]) -> None:
        import yaml

        self.traces.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.yaml").write_text(yaml.safe_dump(resolved_config, sort_keys=False, allow_unicode=True))

    def records(self) -> list[dict[str, Any]]:
        """Finished problems; a torn last line (a crash mid-write) is cut off the file."""
        if not self.results.is_file():
            return []
        out, good_bytes = [], 0
        with self.results.open("rb") as f:
            for raw in f:
                try:
                    out.append(json.loads(raw))
                except json.JSONDecodeError:
                    break
                good_bytes += len(raw)
        if good_bytes != self.results.stat().st_size:
            with self.results.open("r+b") as f:
                f.truncate(good_bytes)
        return out

    def done_ids(self) -> set[str]:
        return {str(r["id"]) for r in self.records()}

    def append(self, problem: Problem, result: Result) -> dict[str, Any]:
        trace_file = self.traces / (re.sub(r"[^A-Za-z0-9_.-]", "_", problem.id) + ".json")
        result.trace.save(trace_file)
        led = result.ledger
        record = {
            "id": problem.id, "answer": result.answer, "reference": problem.answer, "correct": result.correct,
            "strategy": result.strategy, "tokens": {
                "generated": led.generated_tokens, "prompt": led.prompt_tokens, "cached": led.cached_tokens,
                "aborted": led.aborted_tokens,
            },
            "requests": led.requests, "verifier_calls": led.verifier_calls, "verifier_tokens": led.verifier_tokens,
            "wall_s": led.wall_s, "candidates": [c.answer for c in result.candidates], "metrics": dict(result.metrics),
            "trace": str(trace_file.relative_to(self.dir)),
        }
        with self.results.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return record

    def write_summary(self, name: str, strategy: str, records: Iterable[dict[str, Any]], wall_s: float) -> dict[str, Any]:
        recs = list(records)
        graded = [r for r in recs if r["correct"] is not None]
        tok = {k: sum(r["tokens"][k] for r in recs) for k in ("generated", "prompt", "cached", "aborted")}
        summary = {
            "name": name, "strategy": strategy, "problems": len(recs),
            "accuracy": round(sum(bool(r["correct"]) for r in graded) / len(graded), 4) if graded else None,
            "tokens": tok, "generated_per_problem": round(tok["generated"] / len(recs), 1) if recs else 0,
            "verifier_calls": sum(r["verifier_calls"] for r in recs),
            "cache_hit_rate": round(tok["cached"] / tok["prompt"], 4) if tok["prompt"] else 0.0,
            "wall_s": round(wall_s, 2),
        }
        tmp = self.dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2))
        os.replace(tmp, self.dir / "summary.json")
        return summary

