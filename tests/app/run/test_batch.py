"""Batch runs on the scripted backend: a failing problem is a record and the run goes on;
resume retries errors and refuses a different experiment; names and ids are checked first."""

from __future__ import annotations

import asyncio
import json

import pytest

from ponder.app.data.datasets import DatasetConfig, load
from ponder.app.run.batch import execute
from ponder.app.run.run_config import load_run_config
from ponder.backends.scripted import ScriptCall, ScriptedBackend

CONFIG = """\
name: {name}
strategy: {{name: best_of_n, config: {{n: 2, max_tokens: 48}}}}
dataset: {{name: "{data}"}}
concurrency: 3
output_dir: {out}
"""


def setup(tmp_path, name="b", rows=None, extra=""):
    rows = rows or [("p0", "What is 1 + 2?", "3"), ("p1", "BAD What is 2 + 2?", "4"), ("p2", "What is 3 + 4?", "7")]
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"id": i, "problem": q, "answer": a}) + "\n" for i, q, a in rows))
    path = tmp_path / f"{name}.yaml"
    path.write_text(CONFIG.format(name=name, data=data, out=tmp_path / "runs") + extra)
    return path


def flaky(fail: bool):
    def script(call: ScriptCall) -> str:
        if fail and "BAD" in call.prompt:
            raise RuntimeError("this problem cannot be solved")
        return "The answer is \\boxed{3}."
    return script


async def run(path, resume=False, fail=True, overrides=()):
    cfg = load_run_config(path, list(overrides))
    return await execute(cfg, load(cfg.dataset), resume=resume, progress=False, backend=ScriptedBackend(flaky(fail)))


async def test_a_failing_problem_is_an_error_record_and_the_others_are_answered(tmp_path):
    path = setup(tmp_path)
    outcome = await run(path)
    lines = [json.loads(x) for x in (outcome.directory / "results.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r for r in lines}
    assert sorted(by_id) == ["p0", "p1", "p2"]
    assert by_id["p1"]["error"] == "RuntimeError: this problem cannot be solved" and by_id["p1"]["correct"] is False
    assert by_id["p0"]["error"] is None and by_id["p0"]["correct"] is True and by_id["p2"]["correct"] is False
    summary = json.loads((outcome.directory / "summary.json").read_text())
    assert outcome.errors == 1 and summary["errors"] == 1 and summary["problems"] == 3
    assert summary["accuracy"] == round(1 / 3, 4)  # the unanswered problem counts as wrong

    again = await run(path, resume=True, fail=False)  # resume retries only the errored problem
    lines = (outcome.directory / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["id"] == "p1" and json.loads(lines[-1])["error"] is None
    assert again.skipped == 2 and again.errors == 0 and again.summary["problems"] == 3


async def test_resume_refuses_a_config_that_changes_results_naming_the_first_difference(tmp_path):
    path = setup(tmp_path)
    await run(path, fail=False)
    before = (tmp_path / "runs" / "b" / "results.jsonl").read_text()
    for override, named in [
        ("strategy.config.n=4", "strategy.config.n: 2 -> 4"),
        ("seed=1", "seed: 0 -> 1"),
        ("prompt.system=Be brief.", "prompt.system"),
        ("backend.model=other-model", "backend.model: 'smollm2-135m-instruct' -> 'other-model'"),
        ("budget.generated_tokens=100", "budget.generated_tokens: None -> 100"),
    ]:
        with pytest.raises(ValueError, match=f"cannot resume .*config differs in {named}"):
            await run(path, resume=True, overrides=[override])
    # engine tuning and concurrency change nothing in the answers: allowed
    done = await run(path, resume=True, overrides=["concurrency=1", "backend.engine.kv_cache_gib=3", "backend.engine.max_num_seqs=8"])
    assert done.skipped == 3 and (tmp_path / "runs" / "b" / "results.jsonl").read_text() == before


async def test_a_run_directory_written_before_a_key_existed_resumes_and_its_config_runs_again(tmp_path):
    import yaml

    path = setup(tmp_path)
    await run(path, fail=False)
    saved = tmp_path / "runs" / "b" / "config.yaml"
    assert load_run_config(saved).executor.kind == "local"  # every key named, ray's at their defaults
    old = yaml.safe_load(saved.read_text())
    del old["prompt"]["thinking"], old["executor"]  # keys a newer RunConfig added, at their defaults
    saved.write_text(yaml.safe_dump(old, sort_keys=False))
    done = await run(path, resume=True)
    assert done.skipped == 3


async def test_a_bad_results_line_stops_a_resume_before_anything_runs(tmp_path):
    path = setup(tmp_path)
    outcome = await run(path, fail=False)
    results = outcome.directory / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text(lines[0] + "garbage\n" + "".join(lines[1:]))
    before = results.read_text()
    with pytest.raises(ValueError, match=r"results.jsonl:2: not a valid result record"):
        await run(path, resume=True)
    assert results.read_text() == before


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".hidden", "a\\\\b", ""])
def test_run_names_that_leave_output_dir_are_refused(tmp_path, name):
    path = setup(tmp_path)
    path.write_text(path.read_text().replace("name: b\n", f'name: "{name}"\n'))
    with pytest.raises(ValueError, match="name: expected a plain folder name"):
        load_run_config(path)


def test_duplicate_problem_ids_fail_before_the_run(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": i, "problem": "1+1?", "answer": "2"}) + "\n" for i in ("a", "b", "a")))
    with pytest.raises(ValueError, match="problem id 'a' appears more than once"):
        load(DatasetConfig(name=str(data)))


async def test_a_failed_problems_traceback_goes_to_the_log_and_its_trace(tmp_path, caplog):
    outcome = await run(setup(tmp_path))
    by_id = {r["id"]: r for r in map(json.loads, (outcome.directory / "results.jsonl").read_text().splitlines())}
    assert by_id["p1"]["error"] == "RuntimeError: this problem cannot be solved"  # the record keeps one line
    logged = [r for r in caplog.records if r.name == "ponder.solver" and "p1" in r.getMessage()]
    assert len(logged) == 1 and "Traceback (most recent call last)" in logged[0].getMessage()
    assert "in script" in logged[0].getMessage()  # down to the frame that raised
    trace = json.loads((outcome.directory / by_id["p1"]["trace"]).read_text())
    assert trace["graph"]["error"].startswith("Traceback") and "cannot be solved" in trace["graph"]["error"]


async def test_problems_left_by_a_spent_global_budget_are_recorded_and_resumed(tmp_path):
    path = setup(tmp_path, extra="global_budget: {generated_tokens: 20}\n")
    outcome = await run(path, fail=False, overrides=["concurrency=1"])
    records = [json.loads(x) for x in (outcome.directory / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["p0", "p1", "p2"]  # every problem has a record
    assert records[0]["error"] is None
    assert [r["error"] for r in records[1:]] == ["not started: the run's global budget is spent (generated_tokens 20)"] * 2
    assert outcome.errors == 2
    # a resumed run (a new budget of its own) tries the problems it did not start
    again = await run(path, resume=True, fail=False, overrides=["concurrency=1"])
    assert again.skipped == 1 and again.errors == 1
    last = [json.loads(x) for x in (outcome.directory / "results.jsonl").read_text().splitlines()][3:]
    assert [(r["id"], r["error"] is None) for r in last] == [("p1", True), ("p2", False)]


def test_a_scorer_with_an_engine_of_its_own_is_closed_when_the_run_ends(tmp_path):
    """A value model or pooling PRM starts its own engine: a run that built it closes it, or
    every run of a sweep (or a `ponder run` of several configs) leaves one more engine behind."""
    from ponder.verifiers import register_scorer

    closed: list[str] = []

    class OwnEngineScorer:
        def __init__(self, **options: object) -> None:
            pass

        async def score(self, problem, steps):
            return [0.5 for _ in steps]

        def close(self) -> None:
            closed.append("closed")

    register_scorer("own_engine_for_test", OwnEngineScorer)
    path = setup(tmp_path, rows=[("p0", "What is 1 + 2?", "3")])
    path.write_text(path.read_text().replace("name: best_of_n, config: {n: 2, max_tokens: 48}",
                                             "name: beam_search, config: {n: 2, width: 2, max_steps: 2}")
                    + "scorer: {name: own_engine_for_test}\n")
    config = load_run_config(path)
    problems = load(config.dataset)
    run = asyncio.run(execute(config, problems, progress=False, backend=ScriptedBackend(flaky(False))))
    assert run.summary["problems"] == 1 and run.summary["errors"] == 0
    assert closed == ["closed"]
