"""Batch runs: strict configs, datasets, resumable results, reports; the CLI run as a user runs it,
and on the real engine a problem too long for the context is an error record while the terminal
shows a few lines of ours and vLLM's output goes to the run directory's engine.log."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ponder.app.data.datasets import load
from ponder.app.run.batch import execute
from ponder.app.run.run_config import load_run_config

from ...commands import PONDER, ponder

CONFIG = """\
name: {name}
backend: {{kind: vllm, model: {model}, engine: {{max_model_len: 1024}}}}
strategy: {{name: best_of_n, config: {{n: 2, max_tokens: 48}}}}
dataset: {{name: "{data}"}}
concurrency: 4
output_dir: {out}
"""


def write_config(tmp: Path, name="t", model="smollm2-135m-instruct", data=None, extra="") -> Path:
    data = data or write_problems(tmp, 6)
    path = tmp / f"{name}.yaml"
    path.write_text(CONFIG.format(name=name, model=model, data=data, out=tmp / "runs") + extra)
    return path


def write_problems(tmp: Path, n: int) -> Path:
    path = tmp / "sums.jsonl"
    path.write_text("".join(json.dumps({"id": f"s{i}", "problem": f"What is {i} + {i + 2}?", "answer": str(2 * i + 2)}) + "\n" for i in range(n)))
    return path


@pytest.mark.parametrize("body,message", [
    ("strategy: [unclosed", "invalid YAML at line 1"),
    ("strategy: {name: nope}\ndataset: {name: gsm8k}", "strategy: unknown strategy 'nope'"),
    ("strategy: {name: best_of_n, bogus: 1}\ndataset: {name: gsm8k}", "strategy.bogus: unknown key"),
    ("strategy: {name: best_of_n}\ndataset: {name: gsm8k}\nconcurrency: many", "concurrency: Input should be a valid integer"),
    ("strategy: {name: best_of_n, config: {n: 0}}\ndataset: {name: gsm8k}", "field 'n'"),
    ("strategy: {name: best_of_n}", "dataset: required key is missing"),
])
def test_bad_configs_fail_with_one_line_naming_the_key(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ValueError, match=message) as e:
        load_run_config(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


@pytest.mark.engine
def test_cli_bad_inputs_exit_nonzero_and_leave_no_run_dir(tmp_path):
    cases = [
        (write_config(tmp_path, "m", model="no-such-model"), "model 'no-such-model' not found"),
        (write_config(tmp_path, "d", data=tmp_path / "missing.jsonl"), "not a built-in name"),
        (write_config(tmp_path, "e", extra="backend: {kind: vllm, engine: {extra_args: {no_such_option: 1}}}\n"), "engine option not understood"),
    ]
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"problem": "1+1?", "answer": "2"}\n{"problem": \n')
    cases.append((write_config(tmp_path, "b", data=broken), f"{broken}:2: not valid JSON"))
    unknown = tmp_path / "u.yaml"
    unknown.write_text("strategy: {name: nope}\ndataset: {name: gsm8k}\n")
    cases.append((unknown, "unknown strategy 'nope'"))
    for config, message in cases:
        p = ponder("run", str(config), "-q")
        assert p.returncode == 2, p.stderr
        # one error line, last (importing vLLM may print its own notices first)
        errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0] and p.stderr.strip().splitlines()[-1] == errors[0]
    assert not (tmp_path / "runs").exists()


async def test_64_concurrent_problems_queue_on_the_engine(engine, tmp_path):
    cfg = load_run_config(write_config(tmp_path, "many", data="gym:chain_sum?size=64&seed=3"), ["concurrency=64", "strategy.config.max_tokens=24"])
    problems = load(cfg.dataset)
    outcome = await execute(cfg, problems, progress=False, backend=engine)
    lines = (outcome.directory / "results.jsonl").read_text().splitlines()
    assert len(lines) == 64 and outcome.summary["problems"] == 64  # 128 sequences > max_num_seqs 64: they queued
    assert engine.unfinished_requests() == 0


def _kill_when(path: Path, proc: subprocess.Popen, lines: int, timeout: float = 400) -> None:
    """SIGKILL the ponder process once `path` holds `lines` results: a crash mid-run."""
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= lines:
            proc.send_signal(signal.SIGKILL)
            return
        time.sleep(0.05)
    raise AssertionError(f"run never reached {lines} results")


@pytest.mark.server
def test_run_limit_crash_resume_and_report(tmp_path, vllm_server):
    # over HTTP to the session's vLLM server: no engine start per run
    config = write_config(tmp_path, "crash", data=write_problems(tmp_path, 10), extra="concurrency: 1\n")
    http = f"backend: {{kind: openai, endpoints: ['{vllm_server[0]}'], model: smollm2-135m-instruct, options: {{served_model: smollm2}}}}"
    config.write_text(re.sub(r"^backend: .*$", lambda _: http, config.read_text(), flags=re.M))
    results = tmp_path / "runs" / "crash" / "results.jsonl"
    p = ponder("run", str(config), "--limit", "2", "-q")
    assert p.returncode == 0, p.stderr[-2000:]
    first = results.read_text().splitlines()
    assert len(first) == 2 and "2 problems (0 from before)" in p.stdout

    again = ponder("run", str(config), "-q")  # no --resume: refuses to overwrite
    assert again.returncode == 2 and "--resume" in again.stderr

    proc = subprocess.Popen([PONDER, "run", str(config), "--resume", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    _kill_when(results, proc, 4)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    kept = results.read_text().splitlines()
    assert kept[:2] == first and 4 <= len(kept) < 10

    done = ponder("run", str(config), "--resume", "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    final = results.read_text().splitlines()
    assert final[: len(kept)] == kept and len(final) == 10
    assert sorted(json.loads(x)["id"] for x in final) == sorted(f"s{i}" for i in range(10))  # nothing redone
    summary = json.loads((tmp_path / "runs" / "crash" / "summary.json").read_text())
    assert summary["problems"] == 10 and 0 <= summary["accuracy"] <= 1
    trace = json.loads((tmp_path / "runs" / "crash" / json.loads(final[0])["trace"]).read_text())
    assert len(trace["nodes"]) == 3  # the prompt and two samples

    (tmp_path / "runs" / "other").mkdir()
    (tmp_path / "runs" / "other" / "summary.json").write_text(json.dumps({**summary, "name": "other", "strategy": "beam_search", "generated_per_problem": 300}))
    rep = ponder("report", str(tmp_path / "runs" / "crash"), str(tmp_path / "runs" / "other"), "--plot", str(tmp_path / "p.png"))
    assert rep.returncode == 0, rep.stderr
    assert "crash" in rep.stdout and "beam_search" in rep.stdout
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_shipped_config_loads():
    from ponder.app.sweep.plan import load_sweep
    from ponder.app.value.config import load_value_config

    kinds = {"run": 0, "sweep": 0, "value": 0}
    for path in sorted((Path(__file__).parents[3] / "configs").rglob("*.yaml")):
        if path.parent.name == "sweeps":  # `ponder sweep`: a base config plus cells, each validated
            assert load_sweep(path).cells
            kinds["sweep"] += 1
        elif "policy:" in path.read_text():  # a `ponder value train` config: it names a policy, not a backend
            assert load_value_config(path).output
            kinds["value"] += 1
        else:
            cfg = load_run_config(path)
            assert cfg.name and cfg.strategy.name
            kinds["run"] += 1
    assert all(kinds.values()), kinds


QUIET_CONFIG = """\
name: quiet
backend: {{kind: vllm, model: smollm2-135m-instruct, engine: {{max_model_len: 1024, kv_cache_gib: 1}}}}
strategy: {{name: best_of_n, config: {{n: 2, max_tokens: 24}}}}
dataset: {{name: "{data}"}}
concurrency: 3
output_dir: {out}
"""


@pytest.mark.engine
def test_an_over_long_problem_is_an_error_record_and_the_terminal_stays_quiet(tmp_path):
    long = "Add up these numbers: " + " + ".join(str(1000 + i) for i in range(3000)) + ". What is the sum?"
    rows = [("short-1", "What is 2 + 3?", "5"), ("long", long, "0"), ("short-2", "What is 4 + 4?", "8")]
    data = tmp_path / "three.jsonl"
    data.write_text("".join(json.dumps({"id": i, "problem": q, "answer": a}) + "\n" for i, q, a in rows))
    config = tmp_path / "quiet.yaml"
    config.write_text(QUIET_CONFIG.format(data=data, out=tmp_path / "runs"))

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
