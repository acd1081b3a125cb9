"""`ponder run` as a user runs it, on the real engine: a problem too long for the context is an
error record and the others are answered; the terminal shows a few lines of ours while vLLM's
output goes to the run directory's engine.log."""

from __future__ import annotations

import json

import pytest

from .test_cli import ponder

pytestmark = pytest.mark.engine

CONFIG = """\
name: quiet
backend: {{kind: vllm, model: smollm2-135m-instruct, engine: {{max_model_len: 1024, kv_cache_gib: 1}}}}
strategy: {{name: best_of_n, config: {{n: 2, max_tokens: 24}}}}
dataset: {{name: "{data}"}}
concurrency: 3
output_dir: {out}
"""


def test_an_over_long_problem_is_an_error_record_and_the_terminal_stays_quiet(tmp_path):
    long = "Add up these numbers: " + " + ".join(str(1000 + i) for i in range(3000)) + ". What is the sum?"
    rows = [("short-1", "What is 2 + 3?", "5"), ("long", long, "0"), ("short-2", "What is 4 + 4?", "8")]
    data = tmp_path / "three.jsonl"
    data.write_text("".join(json.dumps({"id": i, "problem": q, "answer": a}) + "\n" for i, q, a in rows))
    config = tmp_path / "quiet.yaml"
    config.write_text(CONFIG.format(data=data, out=tmp_path / "runs"))

    p = ponder("run", str(config))
    run = tmp_path / "runs" / "quiet"
    assert p.returncode == 1, p.stderr[-3000:]

    records = {r["id"]: r for r in map(json.loads, (run / "results.jsonl").read_text().splitlines())}
    assert sorted(records) == ["long", "short-1", "short-2"]
    assert records["short-1"]["error"] is None and records["short-2"]["error"] is None
    assert len(records["short-1"]["candidates"]) == 2 and records["short-1"]["tokens"]["generated"] > 0
    assert records["long"]["answer"] == "" and "token" in records["long"]["error"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["problems"] == 3 and summary["errors"] == 1

    # stdout: the summary line; stderr: header, engine start, the progress bar, the error count
    (out,) = p.stdout.splitlines()
    assert out.startswith(f"{run}: 3 problems (0 from before), 1 errored, accuracy")
    err = p.stderr.splitlines()
    assert len(err) == 5, p.stderr
    assert err[0] == f"run quiet: model smollm2-135m-instruct, strategy best_of_n, dataset {data} (3 problems)"
    assert err[1] == f"results: {run}, engine log: {run}/engine.log"
    assert err[2].startswith("engine ready in ") and err[2].endswith(" s")
    assert err[3].startswith("solving") and "3/3" in err[3] and "1 errored" in err[3]
    assert err[4].startswith("error: 1 of 3 problems failed") and "--resume" in err[4]
    log = (run / "engine.log").read_text()
    assert "WARNING" in log and "vllm" in log.lower()  # what used to fill the terminal
    # the failed problem's traceback is kept in the log, once; a normal shutdown adds none
    assert "problem long failed\nTraceback" in log and log.count("Traceback") == 1, log[-3000:]
    assert "Traceback" not in p.stderr
    for bad in ("EngineDeadError", "Exception ignored"):
        assert bad not in log + p.stderr, log[-3000:]
