"""Fixtures of the batch-run tests: `ponder` in this process on scripted engines, and a
40-problem config for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ponder.app.run.run_config import BackendSection
from ponder.backends.scripted import ScriptedBackend
from ponder.cli import app

from ..runs import answer

CONFIG = """\
name: split
backend: {{kind: openai, endpoints: ["http://127.0.0.1:9"]}}
strategy: {{name: best_of_n, config: {{n: 3, max_tokens: 48}}}}
dataset: {{name: "{data}"}}
concurrency: 4
output_dir: {out}
"""


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """`ponder ...` in this process, every engine a scripted one; returns the finished invocation."""
    built: list[ScriptedBackend] = []

    def build(self, seed=0):
        built.append(ScriptedBackend(answer))
        return built[-1]

    monkeypatch.setattr(BackendSection, "build", build)
    runner = CliRunner()

    def ponder(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    ponder.built = built  # type: ignore[attr-defined]
    return ponder


@pytest.fixture
def config(tmp_path) -> Path:
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i:02d}", "problem": f"What is {i} + {2 * i}?", "answer": str(3 * i)}) + "\n" for i in range(40)))
    path = tmp_path / "split.yaml"
    path.write_text(CONFIG.format(data=data, out=tmp_path / "runs"))
    return path
