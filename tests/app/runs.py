"""Scripted runs read back in tests: the answer script of the sharded and Ray runs, a run's
records, files and traces, and a row of `ponder report`'s table."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ponder.backends.scripted import ScriptCall


def answer(call: ScriptCall) -> str:
    """Right for most problems; sample 2 is wrong, and every fifth problem is wrong in all."""
    a, b = map(int, re.search(r"What is (\d+) \+ (\d+)\?", call.prompt).groups())
    wrong = a % 5 == 0 or call.index == 2
    return f"Adding {a} and {b}.\n\nSo \\boxed{{{a + b + (1 if wrong else 0)}}}."


def records(run: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, (run / "results.jsonl").read_text().splitlines())}


def files(*dirs: Path) -> dict[str, bytes]:
    return {str(f): f.read_bytes() for d in dirs for f in sorted(d.rglob("*")) if f.is_file()}


def steps(trace: Path) -> list[tuple[str, int]]:
    return [(n["step"], n["tokens"]) for n in json.loads(trace.read_text())["nodes"]]


def row(line: str) -> tuple[str, list[str]]:
    """A report row's run name, and its problems, accuracy, coverage (each with its interval),
    generated tokens per problem and verifier calls (cache hits and wall time depend on what
    else the engine ran)."""
    return line[:24].strip(), [line[a:b].strip() for a, b in ((46, 51), (52, 72), (73, 93), (94, 106), (107, 114))]
