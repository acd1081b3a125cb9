"""A run directory: the resolved config, results.jsonl (one line per attempt at a problem,
flushed and fsynced as each finishes), a trace per problem, engine.log and summary.json.

results.jsonl is append-only and reading it changes nothing. The one repair, done by
`repair()` before a resumed run appends, is for what a crash mid-write can leave: a torn last
line (no final newline) is cut and that problem is redone. Any other line that does not parse
is an error naming the file and line, and the file is left as it is.
A problem that failed is a record with an `error`; a later attempt appends a new record, and
the latest record per id is the one that counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

from ...records.problem import Problem
from ...records.result import Result
from .stats import Interval, accuracy_interval, bootstrap_mean


class RunStore:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.results = directory / "results.jsonl"
        self.traces = directory / "traces"
        self.config = directory / "config.yaml"

    def check_resume(self, resolved_config: dict[str, Any], resume: bool) -> None:
        """Refuse to mix two experiments in one directory; nothing is written here."""
        from .run_config import result_difference, with_defaults
        import yaml

        if not self.results.exists():
            return
        if not resume:
            raise ValueError(f"{self.dir} already holds results: pass --resume to continue it, or choose another name")
        if self.config.is_file():
            old = with_defaults(yaml.safe_load(self.config.read_text(encoding="utf-8")))
            diff = result_difference(old, resolved_config)
            if diff:
                raise ValueError(f"cannot resume {self.dir}: its config differs in {diff} (results would mix two experiments; choose another name)")
        self.read()  # a bad line stops the resume before any engine starts

    def create(self, resolved_config: dict[str, Any]) -> None:
        import yaml

        self.traces.mkdir(parents=True, exist_ok=True)
        if not self.config.exists():  # a resumed run keeps the config its first results came from
            self.config.write_text(yaml.safe_dump(resolved_config, sort_keys=False, allow_unicode=True))
        self.repair()

    def read(self) -> tuple[list[dict[str, Any]], int]:
        """Every complete record in file order, and the byte length they span (a torn last
        line lies beyond it). Raises ValueError naming the file and line of any other bad line."""
        if not self.results.is_file():
            return [], 0
        data = self.results.read_bytes()
        out, good = [], 0
        lines = data.split(b"\n")
        for n, raw in enumerate(lines, 1):
            last = n == len(lines)
            if last and not raw:
                break
            try:
                record = json.loads(raw)
                if not isinstance(record, dict) or "id" not in record:
                    raise ValueError("not a result object with an id")
            except ValueError as e:  # JSONDecodeError is a ValueError
                if last:  # no newline after it: a write cut short by a crash
                    break
                raise ValueError(f"{self.results}:{n}: not a valid result record ({str(e).splitlines()[0]}); fix or remove that line") from None
            if last:  # complete but unterminated: the newline itself was lost
                break
            out.append(record)
            good += len(raw) + 1
        return out, good

    def repair(self) -> None:
        """Cut a torn last line so the next append starts on a line of its own."""
        _, good = self.read()
        if self.results.is_file() and good != self.results.stat().st_size:
            with self.results.open("r+b") as f:
                f.truncate(good)

    def records(self) -> list[dict[str, Any]]:
        """The latest record of each problem, in first-seen order."""
        latest: dict[str, dict[str, Any]] = {}
        for record in self.read()[0]:
            latest[str(record["id"])] = record
        return list(latest.values())

    def done_ids(self) -> set[str]:
        """Problems answered without an error; errored ones are tried again on resume."""
        return {str(r["id"]) for r in self.records() if not r.get("error")}

    def trace_path(self, problem_id: str) -> Path:
        # a readable stem plus a digest of the exact id: `a/b`, `a_b` and `A_b` never share a file
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", problem_id)[:80]
        return self.traces / f"{stem}-{hashlib.sha256(problem_id.encode()).hexdigest()[:10]}.json"

    def append(self, problem: Problem, result: Result) -> dict[str, Any]:
        error = getattr(result, "error", None)
        trace_file = self.trace_path(problem.id)
        if result.trace is not None:
            result.trace.save(trace_file)
        led = result.ledger
        correct = result.correct
        if error and problem.answer is not None:
            correct = False  # unanswered counts against accuracy
        record = {
            "id": problem.id, "answer": result.answer, "reference": problem.answer, "correct": correct,
            "error": error, "strategy": result.strategy, "tokens": {
                "generated": led.generated_tokens, "prompt": led.prompt_tokens, "cached": led.cached_tokens,
                "aborted": led.aborted_tokens, "thinking": led.thinking_tokens, "answer": led.answer_tokens,
                "probe": led.probe_tokens,
            },
            "requests": led.requests, "verifier_calls": led.verifier_calls, "verifier_tokens": led.verifier_tokens,
            "wall_s": led.wall_s, "candidates": [c.answer for c in result.candidates], "metrics": dict(result.metrics),
            "trace": str(trace_file.relative_to(self.dir)) if trace_file.exists() else None,
        }
        with self.results.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return record

    def write_summary(
        self, name: str, strategy: str, records: Iterable[dict[str, Any]], wall_s: float, **extra: Any,
    ) -> dict[str, Any]:
        """summary.json (replaced whole, never half-written); `extra` keys are recorded as given
        (a shard's place in its run, the runs a merged run came from)."""
        summary = {**summarize(name, strategy, records, wall_s), **extra}
        tmp = self.dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2))
        os.replace(tmp, self.dir / "summary.json")
        return summary


def summarize(name: str, strategy: str, records: Iterable[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """A run's totals from its records (the latest per problem)."""
    recs = list(records)
    graded = [r for r in recs if r["correct"] is not None]
    tok = {k: sum(r["tokens"][k] for r in recs) for k in ("generated", "prompt", "cached", "aborted")}
    # thinking / answer / probe: records written before the split have none
    tok.update({k: sum(r["tokens"].get(k, 0) for r in recs) for k in ("thinking", "answer", "probe")})
    return {
        "name": name, "strategy": strategy, "problems": len(recs),
        "errors": sum(1 for r in recs if r.get("error")),
        **interval_fields("accuracy", accuracy_interval([r["correct"] for r in graded])),
        **interval_fields("coverage", coverage(graded)),
        "tokens": tok, "generated_per_problem": round(tok["generated"] / len(recs), 1) if recs else 0,
        "verifier_calls": sum(r["verifier_calls"] for r in recs),
        "cache_hit_rate": round(tok["cached"] / tok["prompt"], 4) if tok["prompt"] else 0.0,
        "wall_s": round(wall_s, 2),
    }


def thinking_split(summary: dict[str, Any]) -> str:
    """" (thinking T, answer A, probes P per problem)" where the run split its tokens; else ""."""
    tok, n = summary["tokens"], max(summary["problems"], 1)
    if not (tok.get("thinking") or tok.get("probe")):
        return ""
    return f" (thinking {tok['thinking'] / n:.1f}, answer {tok['answer'] / n:.1f}, probes {tok['probe'] / n:.1f} per problem)"


def interval_fields(name: str, iv: Interval | None) -> dict[str, float | None]:
    """`name` with its 95% interval as `name_lo`, `name_hi` (all None when there is none)."""
    return iv.fields(name) if iv is not None else {name: None, f"{name}_lo": None, f"{name}_hi": None}


def coverage(graded: list[dict[str, Any]]) -> Interval | None:
    """The accuracy a perfect verifier would reach: the mean over problems of pass@k at the
    largest k a strategy reports (best-of-n: any of the n right), with its interval; None when a
    strategy reports none. An errored problem covers nothing."""
    per_problem = []
    for r in graded:
        ks = {int(k[5:]): v for k, v in r.get("metrics", {}).items() if k.startswith("pass@")}
        if not ks and not r.get("error"):
            return None
        per_problem.append(ks[max(ks)] if ks else 0.0)
    return bootstrap_mean(per_problem) if per_problem else None
